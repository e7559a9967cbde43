"""The words the profile rules (:mod:`bot.memory.extract`) recognise a fact by.

A rule that reads "I work in X" must tell an industry ("healthcare") from a function
("marketing") or a place ("Berlin"); one that reads "I'm a X" must tell a job ("data
analyst") from a mood ("a bit tired"). These lists are how: plain data, so a word missing
from them is a one-line change.
"""

from __future__ import annotations

__all__ = [
    "FUNCTIONS",
    "INDUSTRIES",
    "ROLE_WORDS",
    "SIZE_WORDS",
    "TOOL_KINDS",
    "is_industry",
]

#: A word in a job title.
ROLE_WORDS = frozenset(
    """manager engineer developer dev designer analyst scientist marketer founder co-founder
    cofounder ceo cto cfo coo cmo cpo cio vp svp evp director lead head consultant writer
    copywriter editor architect researcher student teacher professor lecturer intern
    specialist administrator admin owner officer pm po em swe sde recruiter accountant lawyer
    attorney nurse doctor physician salesperson rep representative coordinator strategist
    executive associate partner freelancer contractor programmer tester qa devops sre agent
    technician operator entrepreneur president chair chairman chairwoman secretary assistant
    advisor adviser planner producer journalist photographer illustrator artist trainer coach
    mentor instructor tutor pharmacist therapist banker economist statistician mathematician
    physicist chemist biologist marketeer principal staff sales support""".split()
)

#: Sectors a person or company is in ("I work in healthcare"); anything ending in "tech"
#: counts too (fintech, edtech, proptech).
INDUSTRIES = frozenset(
    """healthcare health pharma pharmaceuticals biotech medtech logistics shipping transport
    transportation supply-chain banking finance insurance retail ecommerce e-commerce media
    publishing advertising gaming games education edtech telecom telecoms telecommunications
    energy utilities automotive aerospace aviation defense defence manufacturing construction
    hospitality travel tourism agriculture food fashion entertainment music film government
    consulting saas crypto blockchain cybersecurity security semiconductors hardware robotics
    mining chemicals legal nonprofit non-profit philanthropy sports fitness beauty""".split()
) | {"real estate", "oil and gas", "public sector", "private sector", "financial services"}

#: What people do rather than where ("I work in marketing"): never an industry.
FUNCTIONS = frozenset(
    """marketing sales engineering design support operations ops hr finance-team product
    management accounting legal-team procurement it devops data research recruiting""".split()
)

#: Words about a company's size or shape, not its industry ("a small fintech startup").
SIZE_WORDS = frozenset(
    "small big large tiny growing young new remote distributed fully great good early-stage "
    "early stage seed-stage global local international busy remote-first remote-only "
    "bootstrapped venture-backed vc-backed family-owned independent boutique".split()
)

#: What a team's tool is, named by its kind ("our CRM is Pipedrive").
TOOL_KINDS = frozenset(
    """crm warehouse data-warehouse ci cd ci/cd cloud database db ide editor tracker wiki cms
    erp ats hris chat helpdesk bi stack toolchain toolset tool tools framework language
    backend frontend orm monitoring""".split()
) | {"issue tracker", "bug tracker", "data warehouse", "bi tool", "ticketing system"}


def is_industry(value: str) -> bool:
    """Whether ``value`` names a sector: listed, or a "...tech" one."""
    low = value.lower().strip()
    if low in INDUSTRIES:
        return True
    words = low.split()
    return bool(words) and all(
        w in INDUSTRIES or (w.endswith("tech") and len(w) > 5) for w in words
    )
