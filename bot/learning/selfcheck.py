"""Self-checks: admins hear once when satisfaction drops, and get a training data set.

After every rating the dispatcher calls :meth:`SelfCheck.after_rating`, which returns at once;
the check runs in the background (:meth:`SelfCheck.idle` waits for it at shutdown). It looks
at the rolling satisfaction of two scopes:

- the personality that gave the rated answer, in that workspace: its last
  ``learning.satisfaction_window`` current ratings;
- the person who reacted: the last ``learning.satisfaction_window`` ratings they gave.

Satisfaction is the weighted share of 👍 (:mod:`bot.learning.ratings`: the asker's rating
counts ``learning.asker_weight``, anyone else's ``learning.bystander_weight``). When it is below
``learning.satisfaction_alert`` with at least ``learning.min_ratings_for_alert`` ratings, and
the scope is not in alert already, the scope goes into alert:

- an audit entry ``learning.satisfaction_low`` (actor ``chorus``, target ``personality:NAME``
  or ``user:<user uuid>``, figures in its detail), a WARNING log line, and the ``notify``
  callback (the app adds the notice to ``app.admin_notices`` and DMs admins where the platform
  adapter can);
- a training data set is exported (:mod:`bot.learning.dataset`): for a personality, its
  well-rated answers in that workspace, to
  ``storage.data_dir/datasets/PLATFORM-TENANT-NAME-TIME.jsonl``; for a person, the answers
  they rated 👍 there, to ``…/PLATFORM-TENANT-user-USERID-TIME.jsonl``.

The scope leaves alert (audit entry ``learning.satisfaction_recovered``) once its satisfaction
is back at or above the threshold; only then can it alert again. The state is the newest of
those two audit entries for the scope, so it is shared by every worker and survives restarts
without a table of its own. Checks in one process run one at a time.

Forgetting a person (:mod:`bot.personal_data`): :func:`data_sets` deletes the data sets made
for them (the answers they rated 👍, named after them) and takes their examples out of every
other data set in the folder: each file is rewritten without the lines of their answers and
of answers reused from theirs, and kept (it is the team's); :data:`SATISFACTION_ALERTS`
deletes the alert state about them. A data set copied elsewhere, or written with ``chorus
export dataset --out``, is out of Chorus's reach.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from sqlmodel import Session, col, delete, select

from bot import messages
from bot.audit import audit
from bot.background import Background
from bot.events import Rated, utcnow
from bot.learning.answer_cache import reuses_of
from bot.learning.dataset import DatasetQuery, drop_examples, example_keys, write_dataset_file
from bot.learning.ratings import Weights, effective_ratings, satisfaction
from bot.personal_data import PersonalData, PersonalStore
from bot.plugins import PersonalityRegistry
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import AuditEntry, Interaction, Tenant, User

__all__ = ["ALERT", "RECOVERED", "SATISFACTION_ALERTS", "Alert", "SelfCheck", "data_sets"]

log = logging.getLogger(__name__)

ALERT = "learning.satisfaction_low"
RECOVERED = "learning.satisfaction_recovered"
ACTOR = "chorus"

Kind = Literal["personality", "user"]


@dataclass(frozen=True, slots=True)
class Alert:
    """A scope whose satisfaction just dropped below the threshold."""

    tenant_id: uuid.UUID
    platform: str
    tenant: str
    kind: Kind
    #: The personality's name, or the person's platform user id.
    subject: str
    satisfaction: float
    ratings: int
    threshold: float
    #: Where the training data set goes (None once writing it failed), and what it holds.
    dataset: Path | None
    query: DatasetQuery
    #: How the subject is named to admins.
    label: str
    #: The notice sent to admins (set once the data set is written).
    notice: str = ""


Notify = Callable[[Alert], Awaitable[None]]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
#: The data sets' folder under ``storage.data_dir``.
FOLDER = "datasets"
#: What follows a data set's name: the time, and a number for a second one that second.
_STAMP = r"-\d{8}T\d{6}Z(?:-\d+)?\.jsonl"


def _dataset_name(tenant: Tenant, subject: str) -> str:
    """A data set's file name without time and extension (safe on any file system)."""
    return _UNSAFE.sub("_", f"{tenant.platform}-{tenant.external_id}-{subject}")


def in_alert(session: Session, tenant_id: uuid.UUID, target: str) -> bool:
    """Whether the scope ``target`` (``personality:NAME``, ``user:UUID``) is in alert."""
    last = session.exec(
        select(AuditEntry.action)
        .where(
            AuditEntry.tenant_id == tenant_id,
            AuditEntry.target == target,
            col(AuditEntry.action).in_((ALERT, RECOVERED)),
        )
        .order_by(col(AuditEntry.created_at).desc())
        .limit(1)
    ).first()
    return last == ALERT


class SelfCheck:
    """Watches satisfaction after each rating (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        registry: PersonalityRegistry,
        notify: Notify | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.notify = notify
        self.weights = Weights.of(settings.learning)
        self._background = Background()
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.learning.satisfaction_alert > 0

    def after_rating(self, rated: Rated) -> None:
        """Check the scopes of this rating in the background (returns at once)."""
        if self.enabled:
            self._background.spawn(self.check(rated), name="chorus-learning-selfcheck")

    async def rated(self, rated: Rated) -> None:
        """A feedback listener: the check runs off the reaction's path."""
        self.after_rating(rated)

    @property
    def pending(self) -> int:
        return self._background.pending

    async def idle(self, timeout_s: float | None = None) -> bool:
        """Wait until every check has finished; False if ``timeout_s`` ran out."""
        return await self._background.idle(timeout_s)

    async def check(self, rated: Rated) -> list[Alert]:
        """Evaluate the personality and the rater of ``rated``; alert where due. Never raises."""
        try:
            async with self._lock:
                alerts = await self.db.run(lambda s: self._evaluate(s, rated))
                return [await self._deliver(alert) for alert in alerts]
        except Exception:
            log.warning("self-check after a rating failed", exc_info=True)
            return []

    # -- the work -------------------------------------------------------------------------------

    def _evaluate(self, session: Session, rated: Rated) -> list[Alert]:
        tenant = session.get(Tenant, rated.tenant_id)
        rater = session.exec(
            select(User).where(
                User.tenant_id == rated.tenant_id, User.external_id == rated.feedback.user
            )
        ).first()
        if tenant is None:
            return []
        personality = rated.interaction.personality
        alerts: list[Alert] = []
        found = self._scope(
            session, tenant, "personality", personality, f"personality:{personality}"
        )
        if found is not None:
            alerts.append(found)
        if rater is not None:
            found = self._scope(
                session, tenant, "user", rater.external_id, f"user:{rater.id}", rater
            )
            if found is not None:
                alerts.append(found)
        return alerts

    def _scope(
        self,
        session: Session,
        tenant: Tenant,
        kind: Kind,
        subject: str,
        target: str,
        rater: User | None = None,
    ) -> Alert | None:
        cfg = self.settings.learning
        ratings = effective_ratings(
            session,
            self.weights,
            tenant_id=tenant.id,
            personality=subject if kind == "personality" else None,
            rater_id=rater.id if rater is not None else None,
            limit=cfg.satisfaction_window,
        )
        share = satisfaction(ratings)
        if share is None:
            return None
        alerted = in_alert(session, tenant.id, target)
        detail: dict[str, object] = {
            "satisfaction": round(share, 4),
            "ratings": len(ratings),
            "threshold": cfg.satisfaction_alert,
            "window": cfg.satisfaction_window,
        }
        if alerted and share >= cfg.satisfaction_alert:
            audit(
                session,
                tenant_id=tenant.id,
                actor=ACTOR,
                action=RECOVERED,
                target=target,
                detail=detail,
            )
            log.info("satisfaction of %s in %s recovered to %.0f%%", target, tenant.id, share * 100)
            return None
        if alerted or share >= cfg.satisfaction_alert or len(ratings) < cfg.min_ratings_for_alert:
            return None
        dataset = self._dataset_path(
            tenant, subject if kind == "personality" else f"user-{subject}"
        )
        if rater is not None:
            detail["user"] = f"{rater.platform}:{rater.external_id}"
        detail["dataset"] = str(dataset)
        audit(session, tenant_id=tenant.id, actor=ACTOR, action=ALERT, target=target, detail=detail)
        return Alert(
            tenant_id=tenant.id,
            platform=tenant.platform,
            tenant=tenant.external_id,
            kind=kind,
            subject=subject,
            satisfaction=share,
            ratings=len(ratings),
            threshold=cfg.satisfaction_alert,
            dataset=dataset,
            query=(
                DatasetQuery(tenant_id=tenant.id, personality=subject)
                if rater is None
                else DatasetQuery(tenant_id=tenant.id, rater_id=rater.id)
            ),
            label=self._subject_label(kind, subject, rater),
        )

    def _subject_label(self, kind: Kind, subject: str, rater: User | None) -> str:
        if kind == "personality":
            if subject in self.registry:
                return f"{self.registry.get(subject).display_name} (`{subject}`)"
            return f"`{subject}`"
        assert rater is not None
        who = rater.display_name or rater.external_id
        return f"my answers, as rated by {who} ({rater.platform}:{rater.external_id}),"

    def _dataset_path(self, tenant: Tenant, subject: str) -> Path:
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        name = f"{_dataset_name(tenant, subject)}-{stamp}"
        folder = Path(self.settings.storage.data_dir) / FOLDER
        path, n = folder / f"{name}.jsonl", 1
        while path.exists():  # a second alert within the same second
            n += 1
            path = folder / f"{name}-{n}.jsonl"
        return path

    async def _deliver(self, alert: Alert) -> Alert:
        """Export the data set, log, and notify the admins."""
        written: int | None = None
        if alert.dataset is not None:
            path, query = alert.dataset, alert.query
            try:
                result = await self.db.run(
                    lambda s: write_dataset_file(
                        s,
                        path,
                        query,
                        registry=self.registry,
                        bot_name=self.settings.bot.name,
                        weights=self.weights,
                    )
                )
                written = result.written
            except Exception:
                log.warning("could not export a data set to %s", path, exc_info=True)
                alert = replace(alert, dataset=None)
        notice = messages.satisfaction_alert(
            alert.label,
            alert.satisfaction,
            alert.ratings,
            alert.threshold,
            str(alert.dataset) if alert.dataset is not None else None,
            contents="its well-rated answers"
            if alert.kind == "personality"
            else "the answers they rated 👍",
            examples=written,
        )
        alert = replace(alert, notice=notice)
        log.warning("self-check: %s (%s:%s)", notice, alert.platform, alert.tenant)
        if self.notify is not None:
            try:
                await self.notify(alert)
            except Exception:
                log.warning("could not notify admins of a satisfaction alert", exc_info=True)
        return alert


# -- forgetting a person ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Theirs:
    """What of a person the data sets may hold: the keys of their answers' lines (and of
    answers reused from theirs), and the name pattern of the data sets made for them."""

    keys: frozenset[str]
    own: re.Pattern[str] | None


def _find(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> _Theirs:
    mine = list(
        session.exec(
            select(Interaction.id).where(
                Interaction.tenant_id == tenant_id, Interaction.user_id == user_id
            )
        )
    )
    ids = mine + [i for i, _ in reuses_of(session, tenant_id, mine)]
    keys: set[str] = set()
    for start in range(0, len(ids), 900):
        rows = session.exec(
            select(Interaction.id, Interaction.created_at, Interaction.personality).where(
                col(Interaction.id).in_(ids[start : start + 900])
            )
        )
        for iid, at, personality in rows:
            keys |= example_keys(iid, at, personality)
    user, tenant = session.get(User, user_id), session.get(Tenant, tenant_id)
    own = None
    if user is not None and tenant is not None:
        own = re.compile(re.escape(_dataset_name(tenant, f"user-{user.external_id}")) + _STAMP)
    return _Theirs(frozenset(keys), own)


#: One rewrite of the folder at a time in this process (two erasures must not interleave).
_REWRITING = threading.Lock()


def data_sets(data_dir: Path) -> PersonalStore[_Theirs]:
    """A person's share of the data sets under ``data_dir`` (see the module docstring)."""
    folder = data_dir / FOLDER

    def erase_now(theirs: _Theirs) -> int:
        """The data set files deleted or rewritten."""
        if not folder.is_dir():
            return 0
        gone = 0
        with _REWRITING:
            for path in sorted(folder.glob("*.jsonl")):
                if theirs.own is not None and theirs.own.fullmatch(path.name):
                    path.unlink(missing_ok=True)
                    gone += 1
                elif theirs.keys and drop_examples(path, theirs.keys):
                    gone += 1
        return gone

    async def erase(theirs: _Theirs) -> int:
        return await asyncio.to_thread(erase_now, theirs)

    return PersonalStore("data_sets", _find, erase)


def erase_alerts(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Forget me: the satisfaction alerts about the person (the self-check's state)."""
    result = session.exec(
        delete(AuditEntry).where(
            col(AuditEntry.tenant_id) == tenant_id,
            col(AuditEntry.target) == f"user:{user_id}",
            col(AuditEntry.action).in_((ALERT, RECOVERED)),
        )
    )
    return int(result.rowcount or 0)


#: The self-check's alert state about a person (audit entries ``user:<id>``).
SATISFACTION_ALERTS = PersonalData("satisfaction_alerts", ("audit_log",), erase_alerts)
