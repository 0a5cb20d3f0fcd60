// The custom orchestration status samples of the Durable Functions documentation:
// ReserveTicket (instructions for the client) and CityRecommender (output tailored to the
// user).

import * as df from "durable-functions";

df.app.orchestration("ReserveTicket", function* (context) {
    const userId = context.df.getInput();
    const discount = yield context.df.callActivity("CalculateDiscount", userId);
    context.df.setCustomStatus({
        discount,
        discountTimeout: 60,
        bookingUrl: "https://www.myawesomebookingweb.com",
    });

    const isBookingConfirmed = toBoolean(yield context.df.waitForExternalEvent("BookingConfirmed"));
    context.df.setCustomStatus(
        isBookingConfirmed
            ? { message: "Thank you for confirming your booking." }
            : { message: "The booking was not confirmed on time. Please try again." },
    );
    return isBookingConfirmed;
});

df.app.activity("CalculateDiscount", {
    handler: (_userId) => 10,
});

/** A user choice that is not 1, 2 or 3. */
class InvalidChoice extends Error {}

const RECOMMENDATIONS = new Map([
    [1, { recommendedCities: ["Tokyo", "Seattle"], recommendedSeasons: ["Spring", "Summer"] }],
    [2, { recommendedCities: ["Seattle", "London"], recommendedSeasons: ["Summer"] }],
    [3, { recommendedCities: ["Tokyo", "London"], recommendedSeasons: ["Spring", "Summer"] }],
]);

df.app.orchestration("CityRecommender", function* (context) {
    const input = context.df.getInput();
    // Some clients send the number as a string ("3").
    const userChoice = typeof input === "string" && input.trim() !== "" ? Number(input) : input;
    const recommendation = RECOMMENDATIONS.get(userChoice);
    if (recommendation === undefined) {
        const shown = Number.isFinite(userChoice) ? userChoice : JSON.stringify(input);
        throw new InvalidChoice(`unknown user choice ${shown}: expected 1, 2 or 3`);
    }
    context.df.setCustomStatus(recommendation);

    // Wait for the user's selection.
    return yield context.df.waitForExternalEvent("UserChoice");
});

function toBoolean(value) {
    if (value === true || value === "true") {
        return true;
    }
    if (value === false || value === "false") {
        return false;
    }
    throw new TypeError(`BookingConfirmed must carry true or false, got ${JSON.stringify(value)}`);
}
