"""The custom orchestration status samples of the Durable Functions documentation:
ReserveTicket (instructions for the client) and CityRecommender (output tailored to the
user)."""

import durable_functions as df

app = df.DFApp()

RECOMMENDATIONS = {
    1: {"recommendedCities": ["Tokyo", "Seattle"], "recommendedSeasons": ["Spring", "Summer"]},
    2: {"recommendedCities": ["Seattle", "London"], "recommendedSeasons": ["Summer"]},
    3: {"recommendedCities": ["Tokyo", "London"], "recommendedSeasons": ["Spring", "Summer"]},
}


class InvalidChoice(Exception):
    """The user's choice is not one of the known ones."""


@app.function_name("ReserveTicket")
@app.orchestration_trigger(context_name="context")
def reserve_ticket(context: df.DurableOrchestrationContext):
    """Shows the discount, waits for the booking confirmation and thanks the user."""
    user_id = context.get_input()
    discount = yield context.call_activity("CalculateDiscount", user_id)
    context.set_custom_status(
        {
            "discount": discount,
            "discountTimeout": 60,
            "bookingUrl": "https://www.myawesomebookingweb.com",
        }
    )

    is_booking_confirmed = yield context.wait_for_external_event("BookingConfirmed")
    if is_booking_confirmed:
        context.set_custom_status({"message": "Thank you for confirming your booking."})
    else:
        context.set_custom_status({"message": "The booking was not confirmed on time. Please try again."})
    return is_booking_confirmed


@app.function_name("CalculateDiscount")
@app.activity_trigger(input_name="user_id")
def calculate_discount(user_id) -> int:
    """Every user gets 10%."""
    return 10


@app.function_name("CityRecommender")
@app.orchestration_trigger(context_name="context")
def city_recommender(context: df.DurableOrchestrationContext):
    """Shows the recommendation for the user's choice (1, 2 or 3) and returns the choice the
    user then sends as the UserChoice event."""
    raw = context.get_input()
    try:
        choice = int(raw)
    except (TypeError, ValueError):
        choice = None
    if choice not in RECOMMENDATIONS:
        raise InvalidChoice(f"unknown user choice {raw}: expected 1, 2 or 3")
    context.set_custom_status(RECOMMENDATIONS[choice])
    return (yield context.wait_for_external_event("UserChoice"))
