//! A counter task answering questions over a channel with the ask pattern.
//! Run with `cargo run -p streambed-patterns --example ask`.

use streambed_patterns::ask::Ask;
use tokio::sync::mpsc;

enum Command {
    Increment(u64),
    Get(Box<dyn FnOnce(u64) + Send>),
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (counter, mut commands) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut count = 0;
        while let Some(command) = commands.recv().await {
            match command {
                Command::Increment(by) => count += by,
                Command::Get(reply_to) => reply_to(count),
            }
        }
    });
    for by in 1..=10 {
        if counter.send(Command::Increment(by)).await.is_err() {
            eprintln!("the counter stopped");
            return;
        }
    }
    match counter.ask(Command::Get).await {
        Ok(count) => println!("count is {count}"),
        Err(error) => eprintln!("no answer: {error}"),
    }
}
