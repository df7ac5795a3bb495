//! Receives device readings as UDP datagrams: postcard encodings of
//! `(device id: u64, temperature: u32)`.

use log::{debug, warn};
use serde::{Deserialize, Serialize};
use streambed::delayer::Delayer;
use tokio::{net::UdpSocket, sync::mpsc};

use crate::database::{Command, Event};

/// The largest valid datagram: two postcard varints (10 bytes for a u64, 5 for a u32).
const MAX_DATAGRAM_SIZE: usize = 15;

/// A reading as a device sends it.
#[derive(Debug, Deserialize, PartialEq, Serialize)]
pub struct TemperatureUpdated(pub u64, pub u32);

/// Decodes a datagram; `None` unless it holds exactly one reading.
pub fn decode(datagram: &[u8]) -> Option<TemperatureUpdated> {
    match postcard::take_from_bytes::<TemperatureUpdated>(datagram) {
        Ok((reading, [])) => Some(reading),
        _ => None,
    }
}

/// Forwards each valid reading to the database until the socket fails or the database
/// task has gone.
pub async fn task(socket: UdpSocket, database: mpsc::Sender<Command>) {
    // One byte more than the largest valid datagram, so an oversized one is seen as such
    // rather than silently truncated into something valid.
    let mut buffer = [0; MAX_DATAGRAM_SIZE + 1];
    // A lasting socket error must not spin the only core: back off between failures.
    let mut delayer = Delayer::default();
    loop {
        let (len, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => {
                delayer.reset();
                received
            }
            Err(error) => {
                warn!("UDP receive failed: {error}");
                delayer.delay().await;
                continue;
            }
        };
        let Some(TemperatureUpdated(id, temperature)) = decode(&buffer[..len]) else {
            debug!("Ignoring a malformed datagram of {len} bytes from {from}");
            continue;
        };
        let command = Command::Post(id, Event::TemperatureRead(temperature));
        if database.send(command).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_round_trips_and_fits_the_buffer() {
        let bytes = postcard::to_allocvec(&TemperatureUpdated(u64::MAX, u32::MAX)).unwrap();
        assert_eq!(bytes.len(), MAX_DATAGRAM_SIZE);
        assert_eq!(decode(&bytes), Some(TemperatureUpdated(u64::MAX, u32::MAX)));
    }

    #[test]
    fn truncated_or_padded_datagrams_are_refused() {
        let bytes = postcard::to_allocvec(&TemperatureUpdated(300, 21)).unwrap();
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(decode(&padded), None);
        assert_eq!(decode(&[]), None);
    }
}
