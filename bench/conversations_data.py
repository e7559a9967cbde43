"""A generated set of long multi-session conversations with labelled questions.

Friends chat over months in dated sessions (two or three speakers each). In each session some
of them tell news from their lives in long turns (a new hobby, a trip, a pet, a job change,
a photo described in words), the others react, ask filler questions ("What was it like?")
and chat about nothing in particular. Questions are asked afterwards, in four kinds:

- ``single-hop``: one turn answers; the question paraphrases it (category words, not the
  turn's own details).
- ``multi-hop``: two turns from different sessions answer (two speakers' news of one kind,
  or one speaker's two pieces of news of one kind).
- ``temporal``: "when did …" (the date is the answer: the turn must be found without it) or
  "what did … on 9 April 2023 / in March 2023" (the date is in the question, not the turn).
- ``open-domain``: an inference from a turn ("would she enjoy …?"), sharing few words with it.

Deterministic for a seed. Each turn's evidence id is ``(conversation, turn index)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["Conversation", "Question", "Turn", "generate"]


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: str
    text: str
    at: datetime
    session: int


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    kind: str
    evidence: tuple[int, ...]  # turn indices in the conversation


@dataclass
class Conversation:
    name: str
    speakers: list[str]
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Topic:
    key: str
    group: str
    values: tuple[dict[str, str], ...]
    say: tuple[str, ...]  # first person, long
    ask: tuple[str, ...]  # third person, paraphrased ({p}: name, {pos}: his/her)
    did: str  # for "when did {p} …?"
    open: str  # an inference question


def _v(*rows: str) -> tuple[dict[str, str], ...]:
    out = []
    for row in rows:
        out.append(dict(part.split("=", 1) for part in row.split("|")))
    return tuple(out)


_TOPICS: tuple[_Topic, ...] = (
    _Topic(
        "pottery",
        "hobby",
        _v("o=bowl", "o=mug", "o=vase"),
        (
            "I finally signed up for that pottery class at the community centre, and last night I "
            "threw my first {o} on the wheel. It wobbled a lot but I was weirdly proud of it.",
            "Guess what, I've been going to a ceramics studio on Thursdays. My first {o} came out "
            "of the kiln this week, lopsided, glazed a deep blue.",
        ),
        (
            "What creative class did {p} join?",
            "What has {p} been making with clay?",
            "Which hands-on craft is {p} learning?",
        ),
        "start taking a ceramics course",
        "Would {p} appreciate a gift of glazes and studio time?",
    ),
    _Topic(
        "yoga",
        "fitness",
        _v("t=sunrise", "t=hot", "t=aerial"),
        (
            "I've been doing {t} yoga three mornings a week. It really helps my back, and I can "
            "finally hold a crow pose for a few seconds without falling on my face.",
            "My new routine is a {t} yoga session before work; the breathing exercises calm me "
            "down more than anything else I've tried.",
        ),
        (
            "How does {p} keep {pos} back in shape?",
            "What exercise routine does {p} follow in the mornings?",
        ),
        "begin practising yoga",
        "Would {p} be interested in a stretching and meditation retreat?",
    ),
    _Topic(
        "marathon",
        "fitness",
        _v("c=Chicago", "c=Berlin", "c=Lisbon"),
        (
            "I registered for the {c} marathon in the autumn! I'm following a sixteen-week "
            "training plan and did my first twenty-kilometre long run on Sunday.",
            "Big news: I got a spot in the {c} marathon. My knees are complaining but the long "
            "runs on the canal path are going well.",
        ),
        ("Which race is {p} training for?", "What long-distance event did {p} enter?"),
        "sign up for a marathon",
        "Would {p} want a pair of running shoes as a present?",
    ),
    _Topic(
        "rockclimb",
        "fitness",
        _v("g=bouldering gym", "g=climbing wall"),
        (
            "A coworker dragged me to a {g} and now I'm hooked. My forearms were sore for three "
            "days, but I topped my first yellow route yesterday.",
        ),
        (
            "What sport did {p} get into through a colleague?",
            "How does {p} exercise {pos} arms these days?",
        ),
        "try climbing for the first time",
        "Would {p} enjoy a trip to a crag in the mountains?",
    ),
    _Topic(
        "swim",
        "fitness",
        _v("w=lake", "w=sea"),
        (
            "I've started open-water swimming in the {w} with a small group on Saturday mornings. "
            "The water is freezing at first, but afterwards I feel completely awake.",
        ),
        ("What cold activity does {p} do with a group at the weekend?",),
        "join an outdoor swimming group",
        "Would {p} like a wetsuit for her birthday?",
    ),
    _Topic(
        "dog",
        "pet",
        _v("b=golden retriever|n=Biscuit", "b=beagle|n=Pepper", "b=border collie|n=Nova"),
        (
            "We adopted a {b} puppy from the shelter! His name is {n}, he chews everything and "
            "sleeps on my feet, and I'm already completely in love.",
            "[shares a photo of a {b} puppy asleep on a blue blanket] Meet {n}, the newest member "
            "of our family. We brought him home from the rescue on Saturday.",
        ),
        (
            "What animal did {p} bring home from the shelter?",
            "What is the name of {p}'s new companion?",
        ),
        "adopt a puppy",
        "Would {p} need a recommendation for a vet?",
    ),
    _Topic(
        "cat",
        "pet",
        _v("n=Mochi|c=grey", "n=Ziggy|c=ginger"),
        (
            "My neighbour moved abroad, so I took in her {c} cat, {n}. She ignores me all day and "
            "then demands cuddles at three in the morning.",
        ),
        ("Which pet did {p} inherit from a neighbour?", "What creature keeps {p} awake at night?"),
        "take in a cat",
        "Would {p} be interested in a scratching post?",
    ),
    _Topic(
        "fish",
        "pet",
        _v("f=neon tetras", "f=a betta fish"),
        (
            "I set up a planted aquarium in the living room with {f}. Watching them after work "
            "is oddly relaxing, even if cleaning the filter is a chore.",
        ),
        ("What did {p} set up in {pos} living room?", "What kind of pet does {p} watch to relax?"),
        "set up an aquarium",
        "Would {p} be interested in a visit to a public aquarium?",
    ),
    _Topic(
        "japan",
        "trip",
        _v("c=Kyoto", "c=Osaka"),
        (
            "We just got back from two weeks in Japan. {c} was the highlight: temples at dawn, "
            "the best ramen of my life, and a tiny bar with eight seats.",
            "[shares a photo of a red torii gate path in {c}] This was my favourite morning of "
            "the whole Japan trip, we walked up before the crowds arrived.",
        ),
        ("Which Asian country did {p} visit?", "Where did {p} go on {pos} long holiday in Asia?"),
        "travel to Japan",
        "Would {p} enjoy a Japanese cooking class?",
    ),
    _Topic(
        "iceland",
        "trip",
        _v("s=black sand beach", "s=glacier lagoon"),
        (
            "I went on a road trip around Iceland with my sister. We saw the northern lights one "
            "night, and the {s} was unreal, like another planet.",
        ),
        (
            "Where did {p} see the aurora?",
            "Which island nation did {p} drive around with a sibling?",
        ),
        "go on the road trip around Iceland",
        "Would {p} like a photography book about arctic landscapes?",
    ),
    _Topic(
        "camping",
        "trip",
        _v("m=Yosemite", "m=the Lake District", "m=the Dolomites"),
        (
            "Spent the long weekend camping in {m}. It rained the whole second day and the tent "
            "leaked, but the hike to the ridge on Monday made it all worth it.",
            "[shares a photo of a tent by a misty lake in {m}] Our campsite this weekend. Cold, "
            "wet, and absolutely beautiful.",
        ),
        (
            "Where did {p} sleep outdoors over a long weekend?",
            "What outdoor trip did {p} take despite bad weather?",
        ),
        "go camping",
        "Would {p} likely enjoy a weekend in a national park?",
    ),
    _Topic(
        "wedding",
        "trip",
        _v("c=Lisbon", "c=Mexico City"),
        (
            "My cousin got married in {c} and the whole family flew over. I gave a speech in "
            "terrible Spanish and Portuguese mixed together, and everyone laughed in the good way.",
        ),
        (
            "Whose celebration did {p} travel abroad for?",
            "Where did {p} give a toast at a family event?",
        ),
        "attend a cousin's wedding abroad",
        "Is {p} comfortable speaking in front of a crowd?",
    ),
    _Topic(
        "promotion",
        "work",
        _v("r=team lead", "r=senior designer", "r=head of support"),
        (
            "I got the promotion! Starting next month I'm {r}, which means more meetings and a "
            "lot less hands-on work, but I'm excited to mentor the new hires.",
        ),
        ("What change in {pos} job did {p} announce?", "What new position did {p} earn?"),
        "get promoted",
        "Would {p} find a book about managing people useful?",
    ),
    _Topic(
        "newjob",
        "work",
        _v("c=a solar energy startup", "c=the city library", "c=a children's hospital"),
        (
            "I handed in my notice last week. I'm joining {c} after eight years at the bank, "
            "and I'm terrified and thrilled in equal measure.",
        ),
        (
            "Where is {p} going to work after leaving the bank?",
            "Why did {p} resign from {pos} old employer?",
        ),
        "quit the job at the bank",
        "Does {p} value meaningful work over a big salary?",
    ),
    _Topic(
        "bakery",
        "work",
        _v("b=sourdough", "b=cinnamon buns"),
        (
            "My side business is finally real: I rented a stall at the Saturday farmers' market "
            "and sold out of {b} by eleven o'clock.",
        ),
        ("What did {p} sell at the weekend market?", "What small business did {p} launch?"),
        "open a market stall",
        "Would {p} be interested in a commercial oven?",
    ),
    _Topic(
        "volunteer",
        "work",
        _v("o=the food bank", "o=an animal rescue", "o=a literacy charity"),
        (
            "I've been volunteering at {o} every other Sunday. Last time we packed about four "
            "hundred boxes, and I met some really lovely people there.",
        ),
        ("Where does {p} give {pos} time for free?", "What charity work does {p} do on weekends?"),
        "start volunteering",
        "Does {p} care about helping {pos} local community?",
    ),
    _Topic(
        "guitar",
        "learning",
        _v("s=Wonderwall", "s=a Bach prelude"),
        (
            "I bought a second-hand acoustic guitar and I'm teaching myself with online videos. "
            "My fingertips hurt, but I can almost play {s} all the way through.",
        ),
        ("What instrument is {p} teaching {pos}self?", "What music is {p} practising at home?"),
        "buy a guitar",
        "Would {p} enjoy going to a live acoustic concert?",
    ),
    _Topic(
        "spanish",
        "learning",
        _v("a=an app", "a=evening classes"),
        (
            "I'm learning Spanish with {a} before the summer. I can order food and ask for "
            "directions now, but the subjunctive is destroying me.",
        ),
        ("Which language is {p} studying?", "What is {p} struggling with in {pos} studies?"),
        "start learning Spanish",
        "Would {p} enjoy a holiday in South America?",
    ),
    _Topic(
        "coding",
        "learning",
        _v("l=Python", "l=JavaScript"),
        (
            "I enrolled in an online bootcamp for {l}. I built a little app that tracks my "
            "houseplants' watering schedule, and it actually works.",
        ),
        (
            "What programming course did {p} sign up for?",
            "What did {p} create to look after {pos} plants?",
        ),
        "enrol in a coding bootcamp",
        "Would {p} consider a career change into software?",
    ),
    _Topic(
        "painting",
        "hobby",
        _v("s=a sunflower field", "s=the harbour at dusk"),
        (
            "I've been painting with watercolours in the evenings. My latest one is {s}; the "
            "colours bled together, but my mum wants to frame it anyway.",
            "[shares a photo of a watercolour of {s}] This took me three evenings. Be honest, "
            "is it terrible?",
        ),
        (
            "What artistic hobby does {p} do after work?",
            "What did {p}'s mother want to hang on the wall?",
        ),
        "take up watercolour painting",
        "Would {p} appreciate a museum pass for an art gallery?",
    ),
    _Topic(
        "garden",
        "hobby",
        _v("v=tomatoes and courgettes", "v=chillies and herbs"),
        (
            "We got an allotment plot at last! I spent all Saturday digging out weeds, and I've "
            "planted {v}. My back is wrecked but it felt great.",
        ),
        (
            "What is {p} growing on {pos} plot of land?",
            "How did {p} spend {pos} Saturday outdoors?",
        ),
        "get an allotment",
        "Would {p} like a set of gardening gloves?",
    ),
    _Topic(
        "knitting",
        "hobby",
        _v("i=a scarf", "i=a baby blanket"),
        (
            "My grandmother taught me to knit over the holidays, and now I can't stop. I'm "
            "halfway through {i} in green wool for my friend.",
        ),
        ("What craft did {p}'s grandmother pass on?", "What is {p} making with yarn?"),
        "learn to knit",
        "Would {p} enjoy a visit to a wool fair?",
    ),
    _Topic(
        "bookclub",
        "hobby",
        _v("b=a thriller", "b=a historical novel"),
        (
            "I started a book club with a few neighbours. This month we read {b}, and the "
            "discussion got so heated we stayed until midnight.",
        ),
        (
            "What reading group did {p} set up?",
            "What kept {p} and {pos} neighbours up past midnight?",
        ),
        "start a book club",
        "Would {p} appreciate a bookshop gift card?",
    ),
    _Topic(
        "chess",
        "hobby",
        _v("t=the local club tournament", "t=an online blitz league"),
        (
            "I've gotten really into chess again. I entered {t} and won three of my five games, "
            "mostly by playing the London system every single time.",
        ),
        ("What board game is {p} competing in?", "Which strategy game has {p} returned to?"),
        "enter a chess tournament",
        "Would {p} enjoy a puzzle book of endgames?",
    ),
    _Topic(
        "sourdough",
        "food",
        _v("n=Gerald", "n=Doughbi"),
        (
            "I've been keeping a sourdough starter alive for a month now; I named it {n}. My "
            "loaves are still a bit flat, but the crust is getting better every week.",
        ),
        (
            "What does {p} bake at home with {pos} own culture?",
            "What did {p} name that lives in a jar?",
        ),
        "start baking bread",
        "Would {p} like a proofing basket?",
    ),
    _Topic(
        "vegan",
        "food",
        _v("d=a lentil curry", "d=mushroom stroganoff"),
        (
            "I've gone fully plant-based since the new year. Honestly the hardest part is cheese, "
            "but my {d} has become a weekly favourite.",
        ),
        ("What diet change did {p} make?", "What meal does {p} cook every week now?"),
        "go vegan",
        "Would {p} enjoy a steakhouse dinner?",
    ),
    _Topic(
        "cooking",
        "food",
        _v("c=Thai", "c=Ethiopian"),
        (
            "I took a {c} cooking class at the market hall. We made three dishes from scratch, "
            "and I finally understand how to balance the spices.",
        ),
        ("Which cuisine did {p} learn to cook?", "What did {p} learn at the market hall?"),
        "take a cooking class",
        "Would {p} enjoy a spicy food festival?",
    ),
    _Topic(
        "baby",
        "family",
        _v("n=Leo", "n=Ava"),
        (
            "My sister had her baby on Tuesday, a tiny {n}, three kilos exactly. I'm an aunt-uncle "
            "person now and I've already bought far too many little socks.",
        ),
        ("Who was born in {p}'s family?", "Why did {p} buy lots of tiny clothes?"),
        "become an aunt or uncle",
        "Would {p} want advice about gifts for newborns?",
    ),
    _Topic(
        "moving",
        "family",
        _v("c=Portland", "c=Edinburgh", "c=Melbourne"),
        (
            "We're moving to {c} in the spring! My partner got a research job there, so we've "
            "started packing and I'm selling half of our furniture online.",
        ),
        ("Which city is {p} relocating to?", "Why is {p} getting rid of {pos} furniture?"),
        "decide to move to another city",
        "Would {p} need help finding a removal company?",
    ),
    _Topic(
        "grandpa",
        "family",
        _v("a=ninety", "a=eighty-five"),
        (
            "We threw a surprise party for my grandad's {a}th birthday. He pretended to be "
            "annoyed, then danced with every single person in the room.",
            "[shares a photo of an old man blowing out candles on a huge cake] Grandad turned "
            "{a} this weekend, look at that grin!",
        ),
        (
            "Whose big birthday did {p}'s family celebrate?",
            "What surprise did {p}'s family organise?",
        ),
        "celebrate the grandfather's birthday",
        "Is {p} close to {pos} grandparents?",
    ),
    _Topic(
        "house",
        "family",
        _v("r=the kitchen", "r=the bathroom"),
        (
            "We've been renovating {r} ourselves. I learned to tile from videos, and the grout is "
            "uneven, but we saved a fortune on builders.",
        ),
        ("What DIY project is {p} doing at home?", "Which room is {p} redoing?"),
        "start renovating the house",
        "Would {p} appreciate a good power drill?",
    ),
    _Topic(
        "concert",
        "hobby",
        _v("b=an old punk band", "b=a jazz trio"),
        (
            "Last night I saw {b} play at a tiny club downtown. I was in the front row and my "
            "ears are still ringing, but it was the best gig in years.",
        ),
        ("What live show did {p} go to?", "Why are {p}'s ears still ringing?"),
        "go to a gig",
        "Would {p} like tickets to a music festival?",
    ),
    _Topic(
        "photography",
        "hobby",
        _v("c=a film camera", "c=a secondhand mirrorless camera"),
        (
            "I picked up {c} at a flea market and I've been shooting street portraits on my "
            "lunch breaks. Strangers are nicer about it than I expected.",
            "[shares a black-and-white photo of an old man feeding pigeons] Took this one with "
            "my new camera on my lunch break, I love his hat.",
        ),
        ("What did {p} find at a flea market?", "What does {p} do in {pos} lunch breaks now?"),
        "buy a camera",
        "Would {p} enjoy a photo exhibition?",
    ),
    _Topic(
        "injury",
        "fitness",
        _v("b=ankle", "b=wrist"),
        (
            "I sprained my {b} playing five-a-side football on Wednesday. The doctor says six "
            "weeks of rest, so I'm stuck on the sofa binge-watching documentaries.",
        ),
        ("How did {p} get hurt?", "Why has {p} been resting at home?"),
        "get injured",
        "Would {p} need a physiotherapist?",
    ),
    _Topic(
        "car",
        "family",
        _v("c=an electric hatchback", "c=an old camper van"),
        (
            "We finally sold the old car and bought {c}. Road trips are going to be so much "
            "cheaper, and the kids are obsessed with it.",
        ),
        ("What vehicle did {p}'s household buy?", "What did {p} replace the old car with?"),
        "buy a new car",
        "Is {p} planning family road trips?",
    ),
)

_GROUP_BOTH = {
    "hobby": "What hobbies have {a} and {b} picked up?",
    "fitness": "How do {a} and {b} stay active?",
    "pet": "What animals do {a} and {b} look after?",
    "trip": "Where have {a} and {b} travelled recently?",
    "work": "What happened in {a}'s and {b}'s working lives?",
    "learning": "What are {a} and {b} learning?",
    "food": "What have {a} and {b} changed about their cooking or eating?",
    "family": "What family news did {a} and {b} share?",
}
_GROUP_ONE = {
    "hobby": "What pastimes has {p} mentioned over the months?",
    "fitness": "What does {p} do for exercise and health?",
    "pet": "What animals does {p} have at home?",
    "trip": "Which places has {p} visited?",
    "work": "What has been going on in {p}'s career?",
    "learning": "What new skills is {p} working on?",
    "food": "What is new in {p}'s kitchen?",
    "family": "What has been happening in {p}'s family?",
}

_NAMES = (
    "Maria Jon Priya Tomasz Aiko Kwame Elena Rafael Sofia Malik Hannah Diego Leila Oscar Nina "
    "Samuel Yuki Chloe Ibrahim Greta Mateo Zara Lukas Amara Felix Ines Omar Freya Hugo Mei "
    "Noah Alba Kofi Lena Arjun Clara Emil Rosa Tariq Ada"
).split()
_FEMALE = set(
    "Maria Priya Aiko Elena Sofia Hannah Leila Nina Yuki Chloe Greta Zara Amara Ines "
    "Freya Mei Alba Lena Clara Rosa Ada".split()
)

_FILLER = (
    "What was it like?",
    "Let's go into more detail.",
    "Haha, nice!",
    "Wow.",
    "Tell me more!",
    "Really? How so?",
    "That's so cool.",
    "I totally get that.",
    "Same here, honestly.",
    "Good for you!",
    "Oh no, sorry to hear that.",
    "Ha, classic.",
    "Oh wow, really?",
    "That sounds amazing.",
    "How did that feel?",
    "I love that for you.",
    "No way!",
    "Thanks, that means a lot.",
    "Yeah, exactly.",
    "Hmm, interesting.",
    "Totally.",
    "What happened next?",
    "Go on.",
    "Aw, that's sweet.",
    "Fair enough.",
    "Oh, nice one.",
)
_CHAT = (
    "Work has been so busy this week, back-to-back meetings every single day.",
    "The weather here has been grey and rainy again, I miss the sun.",
    "I've been sleeping badly lately, too much coffee probably.",
    "Did you watch the match on Sunday? What a finish.",
    "I'm trying to cut down on screen time in the evenings, it's harder than it sounds.",
    "My train was cancelled twice this week, the commute is a nightmare.",
    "I finally cleaned out the wardrobe and found clothes I forgot I owned.",
    "We ordered pizza three nights in a row, no regrets.",
    "I've been binge-watching a detective series, it's ridiculous but I can't stop.",
    "My phone screen cracked again, that's the second time this year.",
    "Honestly I just need a quiet weekend with nothing planned.",
    "Our neighbours are renovating and the drilling starts at seven every morning.",
    "I keep meaning to call my old school friends, but time just disappears.",
    "Traffic was terrible today, it took an hour to get across town.",
    "I spilled coffee on my laptop keyboard this morning, luckily it still works.",
)
_OPEN = (
    "Hey {o}! Long time no talk.",
    "Hi {o}, how have you been?",
    "Morning! How was your week?",
    "Hey hey, it's been a while!",
    "Hi! I've got news.",
)
_CLOSE = (
    "I have to run, talk soon!",
    "Okay, gotta go cook dinner. Bye!",
    "Catch you later!",
    "Let's talk again next week.",
    "Bye for now, take care!",
)
_PROMPT = (
    "So what's new with you, {p}?",
    "Anything exciting happening, {p}?",
    "How was your weekend, {p}?",
    "What have you been up to, {p}?",
    "Any news, {p}?",
)
_FOLLOW = (
    "It was harder than I thought at first, but I'm getting the hang of it.",
    "Honestly it's been the highlight of my month, I keep thinking about it.",
    "I was nervous beforehand, but it went better than expected.",
    "It's taking up a lot of my time, but I don't mind at all.",
    "My partner thinks I've gone a bit obsessive about it, to be fair.",
)
_REACT = {
    "hobby": ("That's such a fun thing to get into!", "I've always wanted to try that."),
    "fitness": ("You're so disciplined, I could never.", "Careful not to overdo it!"),
    "pet": ("Oh my goodness, I need to meet them!", "Animals make everything better."),
    "trip": ("I'm so jealous, that sounds incredible.", "I need to go there someday."),
    "work": ("Congratulations, you deserve it!", "That's a big step, good luck!"),
    "learning": ("Learning new things as an adult is so hard, respect.", "Keep it up!"),
    "food": ("That sounds delicious.", "You have to cook for me sometime."),
    "family": ("That's huge news!", "Family stuff is always a lot, huh."),
}
_MONTHS = (
    "January February March April May June July August September October November December".split()
)


@dataclass
class _News:
    speaker: str
    topic: _Topic
    turn: int
    at: datetime
    session: int


def _fill(template: str, values: dict[str, str], speaker: str) -> str:
    pos = "her" if speaker in _FEMALE else "his"
    return template.format(p=speaker, pos=pos, **values)


def _day(at: datetime) -> str:
    return f"{at.day} {_MONTHS[at.month - 1]} {at.year}"


def _conversation(index: int, rng: random.Random, sessions: int) -> Conversation:
    n_speakers = 2 if index % 3 else 3
    speakers = rng.sample(_NAMES, n_speakers)
    conv = Conversation(f"conv-{index:02d}", speakers)
    plans: dict[str, list[_Topic]] = {s: rng.sample(_TOPICS, len(_TOPICS)) for s in speakers}
    start = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 120))
    at = start.replace(hour=rng.randrange(8, 21), minute=rng.randrange(60))
    news: list[_News] = []
    session_dates: list[datetime] = []

    def say(speaker: str, text: str, session: int) -> int:
        conv.turns.append(
            Turn(speaker, text, at + timedelta(minutes=len(conv.turns) % 50), session)
        )
        return len(conv.turns) - 1

    for session in range(sessions):
        if session:
            at = at + timedelta(days=rng.randrange(5, 22), hours=rng.randrange(-3, 4))
        session_dates.append(at)
        first, other = rng.sample(speakers, 2)
        say(first, rng.choice(_OPEN).format(o=other), session)
        say(other, rng.choice(_FILLER), session)
        for _ in range(rng.randrange(3, 6)):
            teller = rng.choice(speakers)
            listener = rng.choice([s for s in speakers if s != teller])
            if not plans[teller]:
                continue
            topic = plans[teller].pop()
            values = rng.choice(topic.values)
            if rng.random() < 0.6:
                say(listener, rng.choice(_PROMPT).format(p=teller), session)
            turn = say(teller, _fill(rng.choice(topic.say), values, teller), session)
            news.append(_News(teller, topic, turn, at, session))
            say(listener, rng.choice(_REACT[topic.group] + _FILLER), session)
            for _ in range(rng.randrange(1, 4)):
                say(teller, rng.choice(_FOLLOW + _FILLER), session)
                say(listener, rng.choice(_FILLER), session)
            for _ in range(rng.randrange(1, 4)):
                say(rng.choice(speakers), rng.choice(_CHAT), session)
                say(rng.choice(speakers), rng.choice(_FILLER), session)
        say(rng.choice(speakers), rng.choice(_CLOSE), session)
    _ask(conv, news, rng)
    return conv


def _ask(conv: Conversation, news: list[_News], rng: random.Random) -> None:
    qs = conv.questions
    for item in rng.sample(news, min(len(news), 22)):
        qs.append(
            Question(
                _fill(rng.choice(item.topic.ask), {}, item.speaker), "single-hop", (item.turn,)
            )
        )
    for item in rng.sample(news, min(len(news), 8)):
        qs.append(Question(_fill(item.topic.open, {}, item.speaker), "open-domain", (item.turn,)))
    # multi-hop: two pieces of news of one kind from different sessions
    pairs: list[tuple[_News, _News]] = []
    for a in news:
        for b in news:
            if (
                a.turn < b.turn
                and a.topic.group == b.topic.group
                and a.session != b.session
                and a.topic.key != b.topic.key
            ):
                pairs.append((a, b))
    rng.shuffle(pairs)
    seen: set[tuple[str, ...]] = set()
    for a, b in pairs:
        key = (a.topic.group, *sorted((a.speaker, b.speaker)))
        if key in seen:
            continue
        same = [
            n
            for n in news
            if n.topic.group == a.topic.group and n.speaker in (a.speaker, b.speaker)
        ]
        if a.speaker == b.speaker:
            if len(same) != 2:
                continue
            text = _GROUP_ONE[a.topic.group].format(p=a.speaker)
        else:
            if len(same) != 2:
                continue
            text = _GROUP_BOTH[a.topic.group].format(a=a.speaker, b=b.speaker)
        seen.add(key)
        qs.append(Question(text, "multi-hop", (a.turn, b.turn)))
        if sum(q.kind == "multi-hop" for q in qs) >= 8:
            break
    # temporal: "when did …" and "what did … on DATE / in MONTH"
    for item in rng.sample(news, min(len(news), 5)):
        qs.append(
            Question(
                _fill(f"When did {{p}} {item.topic.did}?", {}, item.speaker),
                "temporal",
                (item.turn,),
            )
        )
    days: dict[tuple[str, int], list[_News]] = {}
    months: dict[tuple[str, int, int], list[_News]] = {}
    for item in news:
        days.setdefault((item.speaker, item.session), []).append(item)
        months.setdefault((item.speaker, item.at.year, item.at.month), []).append(item)
    day_keys = [k for k, v in days.items() if len(v) <= 2]
    for day_key in rng.sample(day_keys, min(len(day_keys), 3)):
        items = days[day_key]
        style = rng.choice(
            (
                "What did {p} tell the others on {d}?",
                "What news did {p} share on {d}?",
                "What was {p} up to around {d}?",
            )
        )
        qs.append(
            Question(
                style.format(p=day_key[0], d=_day(items[0].at)),
                "temporal",
                tuple(i.turn for i in items),
            )
        )
    month_keys = [k for k, v in months.items() if len(v) <= 3]
    for month_key in rng.sample(month_keys, min(len(month_keys), 2)):
        items = months[month_key]
        period = f"{_MONTHS[month_key[2] - 1]} {month_key[1]}"
        style = rng.choice(("What did {p} talk about in {m}?", "What was new for {p} in {m}?"))
        qs.append(
            Question(
                style.format(p=month_key[0], m=period), "temporal", tuple(i.turn for i in items)
            )
        )


def generate(
    conversations: int = 24, *, sessions: int = 12, seed: int = 2023
) -> list[Conversation]:
    """``conversations`` long conversations with their questions; the same for a seed."""
    rng = random.Random(seed)
    return [_conversation(i, rng, sessions) for i in range(conversations)]
