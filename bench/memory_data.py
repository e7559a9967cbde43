"""A synthetic memory data set: people state facts across sessions, then ask in paraphrase.

Each person states a handful of facts drawn from the categories below (statement wording
varies), some of which change later ("I moved to …"); the question for a fact never reuses
its statement's wording. Each person also has chatter (summaries of unrelated conversations)
and every team a set of shared facts; both compete with the answer. Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Fact", "Person", "generate", "team_facts", "CATEGORIES"]

_COMPANIES = [
    "TechFlow AI",
    "Globex",
    "Initech",
    "Umbrella Labs",
    "Hooli",
    "Vandelay Industries",
    "Stark Analytics",
    "Wayne Logistics",
    "Acme Robotics",
    "Soylent Foods",
]
_ROLES = [
    "product manager",
    "data engineer",
    "designer",
    "site reliability engineer",
    "sales lead",
    "marketing director",
    "QA engineer",
    "CTO",
    "support agent",
    "recruiter",
]
_CITIES = [
    "Lisbon",
    "Nairobi",
    "Osaka",
    "Toronto",
    "Berlin",
    "Buenos Aires",
    "Melbourne",
    "Denver",
    "Warsaw",
    "Seoul",
]
_PETS = ["Biscuit", "Pixel", "Nova", "Mango", "Rex", "Luna", "Pepper", "Ziggy", "Olive", "Taco"]
_FOODS = [
    "ramen",
    "tacos al pastor",
    "mushroom risotto",
    "pad thai",
    "falafel",
    "pierogi",
    "sushi",
    "lasagna",
    "pho",
    "jollof rice",
]
_TOOLS = [
    "Terraform",
    "Kubernetes",
    "Jenkins",
    "GitHub Actions",
    "Ansible",
    "ArgoCD",
    "CircleCI",
    "Pulumi",
    "Nomad",
    "Spinnaker",
]
_PROJECTS = [
    "the billing migration",
    "the mobile app redesign",
    "the data warehouse rebuild",
    "the onboarding revamp",
    "the search relaunch",
    "the API rate limiting",
    "the churn dashboard",
    "the partner portal",
    "the GDPR audit",
    "the pricing page",
]
_HOBBIES = [
    "bouldering",
    "sourdough baking",
    "chess",
    "trail running",
    "watercolor painting",
    "birdwatching",
    "salsa dancing",
    "woodworking",
    "astrophotography",
    "sailing",
]
_LANGS = [
    "Portuguese",
    "Japanese",
    "Swahili",
    "Polish",
    "Korean",
    "Spanish",
    "Dutch",
    "Hindi",
    "Greek",
    "Turkish",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_EDITORS = [
    "Vim",
    "Emacs",
    "VS Code",
    "IntelliJ",
    "Sublime Text",
    "Helix",
    "Zed",
    "Neovim",
    "Nano",
    "Xcode",
]
_MANAGERS = [
    "Priya",
    "Tomasz",
    "Akua",
    "Hiroshi",
    "Mateo",
    "Ingrid",
    "Farah",
    "Lucas",
    "Mei",
    "Oren",
]


@dataclass(frozen=True)
class Category:
    name: str
    values: list[str]
    statements: list[str]
    questions: list[str]
    changes: list[str] | None = None  # how a later change is stated (the newer fact wins)


CATEGORIES = [
    Category(
        "company",
        _COMPANIES,
        ["I work at {v}.", "I joined {v} last year.", "My employer is {v}."],
        [
            "Which company am I employed by?",
            "Who is my employer again?",
            "What organisation do I work for?",
        ],
        ["I just started a new job at {v}.", "I switched jobs, I'm now with {v}."],
    ),
    Category(
        "role",
        _ROLES,
        ["I'm a {v}.", "My job title is {v}.", "I work as a {v}."],
        ["What is my position?", "What do I do for a living?", "What's my job?"],
    ),
    Category(
        "city",
        _CITIES,
        ["I live in {v}.", "Home for me is {v}.", "I'm based in {v}."],
        ["Where is my home town these days?", "Which city do I reside in?", "Where am I located?"],
        ["I relocated to {v} last month.", "We moved house, I now live in {v}."],
    ),
    Category(
        "pet",
        _PETS,
        ["My dog is called {v}.", "Our cat's name is {v}.", "I have a puppy named {v}."],
        [
            "What's the name of my pet?",
            "How is my animal called?",
            "Remind me what my pet is named.",
        ],
    ),
    Category(
        "food",
        _FOODS,
        ["My favourite food is {v}.", "I could eat {v} every day.", "Nothing beats {v}."],
        [
            "What dish do I love the most?",
            "What should we order for my lunch treat?",
            "Which meal is my top pick?",
        ],
    ),
    Category(
        "tool",
        _TOOLS,
        ["We deploy with {v}.", "Our infrastructure runs on {v}.", "Releases go out through {v}."],
        [
            "Which deployment tooling do we rely on?",
            "How do we ship to production?",
            "What do we use for deployments?",
        ],
    ),
    Category(
        "project",
        _PROJECTS,
        ["I'm working on {v}.", "This quarter I lead {v}.", "My main project is {v}."],
        [
            "What am I busy with at the moment?",
            "Which initiative am I driving?",
            "What's my current project?",
        ],
    ),
    Category(
        "hobby",
        _HOBBIES,
        ["On weekends I enjoy {v}.", "My hobby is {v}.", "I spend my free time on {v}."],
        ["What do I do for fun?", "How do I like to relax on weekends?", "What's my pastime?"],
    ),
    Category(
        "language",
        _LANGS,
        [
            "I'm learning {v}.",
            "I take {v} lessons twice a week.",
            "I'm studying {v} at night school.",
        ],
        [
            "Which foreign language am I studying?",
            "What language course am I taking?",
            "Which tongue am I trying to learn?",
        ],
    ),
    Category(
        "meeting",
        _DAYS,
        [
            "Our team sync is every {v}.",
            "We hold the weekly planning on {v}.",
            "The standup review happens each {v}.",
        ],
        [
            "On which weekday do we meet as a team?",
            "When is our weekly team meeting?",
            "What day is the team planning session?",
        ],
    ),
    Category(
        "editor",
        _EDITORS,
        ["I write code in {v}.", "My editor of choice is {v}.", "I can't live without {v}."],
        ["Which text editor do I prefer?", "What IDE do I use?", "What's my coding environment?"],
    ),
    Category(
        "manager",
        _MANAGERS,
        ["My manager is {v}.", "I report to {v}.", "{v} is my boss."],
        ["Who do I report to?", "Who's my line manager?", "Who is my supervisor?"],
    ),
]


_TOPICS = [
    "the Q3 roadmap",
    "a flaky integration test",
    "hiring for the platform team",
    "the office party",
    "a customer escalation",
    "the conference talk",
    "budget planning",
    "a database index",
    "the design review",
    "an outage postmortem",
    "holiday coverage",
    "the new logo",
    "a vendor contract",
    "accessibility fixes",
    "the release notes",
    "an A/B test",
    "the security training",
    "laptop upgrades",
    "the team offsite",
    "documentation gaps",
]
_EPISODES = [
    "We discussed {t}.",
    "You asked me to summarise {t}.",
    "We brainstormed about {t}.",
    "You shared notes on {t}.",
    "We reviewed {t} together.",
]
_TEAM_FACTS = [
    "The team chats in the #general channel.",
    "Our office is in {c}.",
    "The quarterly business review is in March.",
    "We use Jira for tickets.",
    "Code reviews need two approvals.",
    "The on-call rotation changes on Mondays.",
    "Our fiscal year starts in April.",
    "Production deploys are frozen in December.",
    "The design system is called Atlas.",
    "Customer data stays in the EU region.",
    "Expense reports are due by the 5th.",
    "The wiki lives in Notion.",
]


@dataclass(frozen=True)
class Fact:
    category: str
    text: str
    question: str
    at: datetime
    current: bool  # False: a later fact of the same category replaced it


@dataclass(frozen=True)
class Person:
    user: str
    tenant: str
    facts: list[Fact]
    noise: list[tuple[str, datetime]]

    @property
    def queries(self) -> list[tuple[str, str]]:
        """(question, text of the fact that answers it) for current facts."""
        return [(f.question, f.text) for f in self.facts if f.current]


def team_facts(tenant: str) -> list[str]:
    """What every member of a tenant's team can recall (distractors for personal questions)."""
    city = _CITIES[sum(map(ord, tenant)) % len(_CITIES)]
    return [f.format(c=city) for f in _TEAM_FACTS]


def generate(
    people: int,
    *,
    facts_per_person: int = 10,
    noise_per_person: int = 8,
    tenants: int = 20,
    seed: int = 7,
) -> list[Person]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out: list[Person] = []
    for p in range(people):
        chosen = rng.sample(CATEGORIES, min(facts_per_person, len(CATEGORIES)))
        facts: list[Fact] = []
        for cat in chosen:
            value = rng.choice(cat.values)
            at = start + timedelta(days=rng.randint(0, 200), minutes=rng.randint(0, 1440))
            question = rng.choice(cat.questions)
            statement = rng.choice(cat.statements).format(v=value)
            if cat.changes and rng.random() < 0.3:
                newer = rng.choice([v for v in cat.values if v != value])
                later = at + timedelta(days=rng.randint(10, 100))
                facts.append(Fact(cat.name, statement, question, at, current=False))
                facts.append(
                    Fact(cat.name, rng.choice(cat.changes).format(v=newer), question, later, True)
                )
            else:
                facts.append(Fact(cat.name, statement, question, at, current=True))
        noise = [
            (
                rng.choice(_EPISODES).format(t=t),
                start + timedelta(days=rng.randint(0, 300), minutes=rng.randint(0, 1440)),
            )
            for t in rng.sample(_TOPICS, noise_per_person)
        ]
        out.append(Person(f"u{p}", f"t{p % tenants}", facts, noise))
    return out
