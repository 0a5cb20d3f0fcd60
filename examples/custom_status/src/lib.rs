//! The custom orchestration status samples of the Durable Functions documentation:
//! `ReserveTicket` (instructions for the client) and `CityRecommender` (output tailored
//! to the user).

use durable_sdk::{Error, OrchestrationContext};
use serde_json::{Value, json};

async fn reserve_ticket(ctx: OrchestrationContext) -> Result<bool, Error> {
    let user_id: Value = ctx.get_input()?;
    let discount: i64 = ctx.call_activity("CalculateDiscount", &user_id).await?;
    ctx.set_custom_status(&json!({
        "discount": discount,
        "discountTimeout": 60,
        "bookingUrl": "https://www.myawesomebookingweb.com",
    }));

    let confirmed: bool = ctx.wait_for_external_event("BookingConfirmed").await?;
    let message = if confirmed {
        "Thank you for confirming your booking."
    } else {
        "The booking was not confirmed on time. Please try again."
    };
    ctx.set_custom_status(&json!({ "message": message }));
    Ok(confirmed)
}

fn calculate_discount(_user_id: Value) -> Result<i64, Error> {
    Ok(10)
}

async fn city_recommender(ctx: OrchestrationContext) -> Result<Value, Error> {
    let choice: i64 = ctx.get_input()?;
    let recommendation = match choice {
        1 => json!({
            "recommendedCities": ["Tokyo", "Seattle"],
            "recommendedSeasons": ["Spring", "Summer"],
        }),
        2 => json!({
            "recommendedCities": ["Seattle", "London"],
            "recommendedSeasons": ["Summer"],
        }),
        3 => json!({
            "recommendedCities": ["Tokyo", "London"],
            "recommendedSeasons": ["Spring", "Summer"],
        }),
        other => {
            return Err(Error::new(
                "InvalidChoice",
                format!("unknown user choice {other}: expected 1, 2 or 3"),
            ));
        }
    };
    ctx.set_custom_status(&recommendation);
    Ok(ctx.wait_for_external_event("UserChoice").await?)
}

durable_sdk::export! {
    orchestrators: {
        "ReserveTicket" => reserve_ticket,
        "CityRecommender" => city_recommender,
    },
    activities: { "CalculateDiscount" => calculate_discount },
}
