//! Publisher confirms: a publish joins the window of unconfirmed ones as soon as its frames
//! are queued, and its confirm is reported, in publish order, when it comes. A confirm lost with
//! the link leaves the publish in the window, to be republished on the next link.

use std::time::Instant;

use futures_lite::future::poll_once;
use lapin::types::ShortString;
use lapin::Confirmation;
use mq_core::{AckSink, BackendError, Outcome};

use super::{Entry, Pending, RabbitProducer, Wait};
use crate::NAME;

impl RabbitProducer {
    /// Starts a confirmed publish on the current link: polled once, which queues its frames
    /// and registers its confirm; the write and the confirm are awaited later, in the window.
    pub(super) fn start(&self, entry: &Entry) -> Result<Pending, BackendError> {
        let Some((_, channel)) = &self.link else {
            return Err(BackendError::other(NAME, "no connection"));
        };
        let (channel, exchange, key, props, opts, payload) = (
            channel.clone(),
            ShortString::from(self.topology.exchange.as_str()),
            entry.key.clone(),
            self.props.clone(),
            self.options(),
            entry.payload.clone(),
        );
        let mut pending: Pending = Box::pin(async move {
            channel
                .basic_publish(exchange, key, opts, &payload, props)
                .await?
                .await
        });
        match self.rt.block_on(poll_once(&mut pending)) {
            None => Ok(pending),
            Some(Ok(c)) => Ok(Box::pin(std::future::ready(Ok(c)))),
            Some(Err(e)) => Err(BackendError::other(
                NAME,
                format!("publishing to {}: {e}", self.dialer.shown()),
            )),
        }
    }

    /// Publisher confirms: the publish joins the window of unconfirmed ones; a full window
    /// waits for the oldest.
    pub(super) fn publish_confirmed(
        &mut self,
        entry: Entry,
        acks: &mut dyn AckSink,
    ) -> Result<(), BackendError> {
        let confirm = loop {
            match self.start(&entry) {
                Ok(c) => break c,
                Err(e) => {
                    self.lose(&e);
                    self.recover(None)?;
                }
            }
        };
        self.in_flight.push_back((entry, confirm));
        if let Err(e) = self.reap(acks, Wait::No) {
            self.lose(&e);
            self.recover(None)?;
        }
        let mut deadline = Instant::now() + self.ack_timeout;
        while self.in_flight.len() >= self.max_in_flight {
            if Instant::now() >= deadline {
                return Err(BackendError::other(
                    NAME,
                    format!(
                        "{} publishes unconfirmed by {} after {}s",
                        self.in_flight.len(),
                        self.dialer.shown(),
                        self.ack_timeout.as_secs()
                    ),
                ));
            }
            if let Err(e) = self.reap(acks, Wait::One(deadline)) {
                self.lose(&e);
                self.recover(None)?;
                deadline = Instant::now() + self.ack_timeout;
            }
        }
        Ok(())
    }

    /// Reports the confirms at the front of the window that have arrived, in publish order,
    /// waiting for none, the first, or all of them until a deadline. An error means the link
    /// is lost; what is still in the window stays there, to be republished.
    pub(super) fn reap(&mut self, acks: &mut dyn AckSink, wait: Wait) -> Result<(), BackendError> {
        let mut reported = 0;
        let r = self.reap_into(acks, wait, &mut reported);
        if reported > 0 {
            self.progressed();
        }
        r
    }

    fn reap_into(
        &mut self,
        acks: &mut dyn AckSink,
        mut wait: Wait,
        reported: &mut usize,
    ) -> Result<(), BackendError> {
        let in_flight = &mut self.in_flight;
        let shown = self.dialer.shown();
        self.rt.block_on(async {
            while let Some((entry, confirm)) = in_flight.front_mut() {
                let seq = entry.seq;
                let r = match wait {
                    Wait::No => match poll_once(&mut *confirm).await {
                        Some(r) => r,
                        None => return Ok(()),
                    },
                    Wait::One(deadline) | Wait::All(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match tokio::time::timeout(left, &mut *confirm).await {
                            Ok(r) => r,
                            Err(_) => return Ok(()),
                        }
                    }
                };
                let outcome = match r {
                    Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => Outcome::Acked,
                    // Returned as unroutable, or refused: the broker does not have it.
                    Ok(Confirmation::Ack(Some(_))) | Ok(Confirmation::Nack(_)) => Outcome::Failed,
                    Err(e) => {
                        return Err(BackendError::other(
                            NAME,
                            format!("waiting for confirms from {shown}: {e}"),
                        ));
                    }
                };
                in_flight.pop_front();
                acks.ack(seq, outcome);
                *reported += 1;
                if let Wait::One(_) = wait {
                    wait = Wait::No;
                }
            }
            Ok(())
        })
    }
}
