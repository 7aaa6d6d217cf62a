"""The bundled example app: agents that run with no API key (the mock model) or any
OpenAI-compatible endpoint. Point APP_MODULE at your own module to define yours."""

from __future__ import annotations

import msgspec

from threadline import (
    Agent,
    ContextOptions,
    EventTimeout,
    RagOptions,
    Step,
    ToolContext,
    canvas_tools,
    document_search,
    human_tool,
    store_tools,
    tool,
    workflow,
)


class WeatherArgs(msgspec.Struct):
    city: str
    unit: str = "celsius"


class AddArgs(msgspec.Struct):
    a: float
    b: float


class ApprovalArgs(msgspec.Struct):
    question: str


@tool("The current weather in a city")
def get_weather(ctx: ToolContext, args: WeatherArgs) -> dict[str, object]:
    # A deterministic stand-in for a weather service (no network here).
    temp = 5 + sum(map(ord, args.city.lower())) % 25
    if args.unit == "fahrenheit":
        temp = round(temp * 9 / 5 + 32)
    return {"city": args.city, "temperature": temp, "unit": args.unit, "sky": "clear"}


@tool("Add two numbers")
def add(ctx: ToolContext, args: AddArgs) -> float:
    return args.a + args.b


ask_human = human_tool("ask_human", "Ask a person to approve or answer before going on", ApprovalArgs)


class BookingArgs(msgspec.Struct):
    city: str
    nights: int = 1


@tool("Book a hotel in a city (a person approves each booking first)", needs_approval=True)
def book_hotel(ctx: ToolContext, args: BookingArgs) -> dict[str, object]:
    # A stand-in for a booking service: it runs only once the user allowed it in the chat page.
    return {"booked": args.city, "nights": args.nights, "confirmation": f"HTL-{abs(hash(args.city)) % 10_000:04d}"}


class TripPlan(msgspec.Struct):
    destination: str
    days: int
    activities: list[str]


assistant = Agent(
    name="assistant",
    instructions="You are a concise, friendly assistant.",
    auto_title=True,  # an untitled chat is named after its first reply
)

weather = Agent(
    name="weather",
    instructions="You answer questions about the weather. Use the tools; never guess.",
    tools=[get_weather, add, ask_human, book_hotel],
    max_steps=5,
    auto_title=True,
)

planner = Agent(
    name="planner",
    instructions="You plan trips. Answer with the requested JSON only.",
    output=TripPlan,
)

librarian = Agent(
    name="librarian",
    instructions="Answer from the passages of the user's documents and the shared ones; cite them by number.",
    # prompt-based RAG (passages matching the prompt in the context) and tool-based RAG (a search tool)
    context_options=ContextOptions(rag=RagOptions(namespaces=["user", "global"], limit=4)),
    tools=[document_search(["user", "global"])],
    max_steps=3,
)

editor = Agent(
    name="editor",
    instructions="You edit the user's draft on the canvas with your tools, one element at a time. To undo "
                 "or repeat an earlier edit, find it in the reference notes and use its snippet id and states. "
                 "Remember facts the user tells you about themselves for later chats.",
    tools=[*canvas_tools(), *store_tools()],
    max_steps=5,
)

AGENTS = [assistant, weather, planner, librarian, editor]


# -- workflows: durable multi-step work (see the README's "Workflows") -----------------------


class ReportArgs(msgspec.Struct):
    city: str


class WeatherSummary(msgspec.Struct):
    city: str
    advice: str


@workflow("weather_report")
async def weather_report(step: Step, args: ReportArgs) -> dict[str, object]:
    """The reference's example: a thread, an agent's answer (with tools, up to 10 model calls), a
    structured summary of it, and a message for the user."""
    thread_id = await step.create_thread(title=f"Weather report: {args.city}")
    answer = await step.generate_text(thread_id, f"What is the weather in {args.city}?", agent="weather",
                                      max_steps=10)
    summary = await step.generate_object(thread_id, f"Summarize for a traveller: {answer.text}", agent="planner",
                                         output=WeatherSummary)
    await step.save_message(thread_id, f"{summary.city}: {summary.advice}", agent_name="reporter")
    return {"threadId": thread_id, "answer": answer.text, "summary": msgspec.to_builtins(summary)}


@workflow("trip_with_approval")
async def trip_with_approval(step: Step, args: ReportArgs) -> str:
    """A plan, then a person's approval (an event sent from a tab) before it is booked."""
    thread_id = await step.create_thread(title=f"Trip to {args.city}")
    plan = await step.generate_object(thread_id, f"Plan three days in {args.city}", agent="planner")
    try:
        approval = await step.wait_for_event("approval", timeout_s=24 * 3600)
    except EventTimeout:
        approval = {"approved": False}
    verdict = "Booked" if isinstance(approval, dict) and approval.get("approved") else "Not booked"
    await step.save_message(thread_id, f"{verdict}: {plan.destination}, {plan.days} days", agent_name="booking")
    return verdict


WORKFLOWS = [weather_report, trip_with_approval]
