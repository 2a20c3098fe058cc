//! Trains one head of attention to find the marked token (the task: [`task`]), on the host:
//! `cargo run --release -p nadaraya --example train_head`.
//!
//! Prints the loss falling and the attention focusing on the fixed evaluation set: the weight
//! on the marked token (about `1/L` at the start) and the entropy of the weights (about `ln L`
//! at the start), every 10 steps to 50 and every 100 after, then the learned query and key projections.

#[allow(dead_code)]
mod task;

use task::{L, Trainer};

const STEPS: usize = 400;

fn main() -> Result<(), nadaraya::Error> {
    let mut tr = Trainer::new(7)?;
    let before = tr.eval()?;
    println!(
        "one head, L = {L} tokens, Adam lr = {}; uniform attention: weight {:.3}, entropy {:.3}",
        task::LR,
        1.0 / L as f32,
        (L as f32).ln()
    );
    println!("step  train_loss  eval_loss  weight_on_marked  entropy");
    println!(
        "{:4}  {:>10}  {:9.5}  {:16.3}  {:7.3}",
        0, "-", before.loss, before.on_marked, before.entropy
    );
    for step in 1..=STEPS {
        let loss = tr.step()?;
        if step <= 50 && step % 10 == 0 || step % 100 == 0 {
            let s = tr.eval()?;
            println!(
                "{step:4}  {loss:10.5}  {:9.5}  {:16.3}  {:7.3}",
                s.loss, s.on_marked, s.entropy
            );
        }
    }
    let after = tr.eval()?;
    println!(
        "eval loss {:.5} -> {:.5} ({:.0}x lower); weight on the marked token {:.3} -> {:.3}; entropy {:.3} -> {:.3}",
        before.loss,
        after.loss,
        before.loss / after.loss,
        before.on_marked,
        after.on_marked,
        before.entropy,
        after.entropy
    );
    println!(
        "learned W_Q (rows: value, marker, constant): {:?}",
        tr.w.w_q[0]
    );
    println!(
        "learned W_K (rows: value, marker, constant): {:?}",
        tr.w.w_k[0]
    );
    Ok(())
}
