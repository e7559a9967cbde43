"""Identity linking: one person with accounts on several platforms.

A Slack workspace and a Discord guild are different tenants, so the same person has a
``users`` row in each. Linking makes them one *person* (:mod:`bot.identity.person`): the
account that asked for the one-time code (:mod:`bot.identity.codes`) is the person's *home*;
the account that entered it, once it has been shown whose account that is and confirmed
(:mod:`bot.identity.pending`), is linked to that home (:mod:`bot.identity.links`, one
``account_links`` row). From then on:

- personal data (profile, personal memories, learned preferences) is **written** to the home
  account and **read** from every account of the person, whichever platform they write from;
- tenant data (team memories and team profile, channel bindings, plugin state, patterns, the
  answer cache, thread history, interactions and ratings) stays with each account's own
  tenant: a linked account never sees the other workspace's team data;
- ``forget me`` erases every account of the person; ``unlink`` splits them again: the home
  keeps everything learned while linked, the other account keeps what it had before.

The chat commands (``link``, ``link CODE``, ``link confirm``, ``unlink``) are
:mod:`bot.identity.commands`.
"""

from __future__ import annotations

from bot.identity.person import Account, Person, home_account, person_of

__all__ = ["Account", "Person", "home_account", "person_of"]
