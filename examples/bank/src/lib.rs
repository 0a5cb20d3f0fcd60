//! Durable entities in a critical section: `Account` entities hold a balance, and the
//! `BankTransfer` orchestrator moves money between two of them while it holds both locks,
//! so no other orchestration can touch either account in between.

use durable_sdk::{EntityContext, EntityId, Error, OrchestrationContext};
use serde::Deserialize;

/// An account: its state is the balance, an integer.
fn account(ctx: &mut EntityContext<i64>) -> Result<(), Error> {
    match ctx.operation_name().to_lowercase().as_str() {
        "deposit" => {
            let amount = amount(ctx)?;
            let balance = ctx.state_mut();
            *balance = balance.saturating_add(amount);
        }
        "withdraw" => {
            let amount = amount(ctx)?;
            let balance = *ctx.state();
            if balance < amount {
                return Err(Error::new(
                    "InsufficientFunds",
                    format!(
                        "account '{}' holds {balance}, less than {amount}",
                        ctx.entity_id().key()
                    ),
                ));
            }
            ctx.set_state(balance - amount);
        }
        "balance" => ctx.set_result(ctx.state()),
        other => {
            return Err(Error::new(
                "UnknownOperation",
                format!("Account has no operation '{other}'"),
            ));
        }
    }
    Ok(())
}

/// The operation's input: an amount that must not be negative.
fn amount(ctx: &EntityContext<i64>) -> Result<i64, Error> {
    let amount: i64 = ctx.get_input()?;
    if amount < 0 {
        return Err(Error::new(
            "InvalidAmount",
            format!("the amount must not be negative, got {amount}"),
        ));
    }
    Ok(amount)
}

#[derive(Deserialize)]
struct Transfer {
    from: String,
    to: String,
    amount: i64,
}

/// Input `{"from": "a", "to": "b", "amount": 10}`: inside a critical section on both
/// accounts, moves `amount` from `from` to `to` if `from` holds enough. Returns whether it
/// did.
async fn bank_transfer(ctx: OrchestrationContext) -> Result<bool, Error> {
    let transfer: Transfer = ctx.get_input()?;
    let from = EntityId::new("Account", transfer.from);
    let to = EntityId::new("Account", transfer.to);

    let lock = ctx.lock_entities(&[from.clone(), to.clone()]).await?;
    let balance: i64 = ctx.call_entity(&from, "balance", ()).await?;
    let sufficient = balance >= transfer.amount;
    if sufficient {
        ctx.call_entity::<()>(&from, "withdraw", transfer.amount).await?;
        ctx.call_entity::<()>(&to, "deposit", transfer.amount).await?;
    }
    lock.release();
    Ok(sufficient)
}

durable_sdk::export! {
    orchestrators: { "BankTransfer" => bank_transfer },
    entities: { "Account" => account },
}
