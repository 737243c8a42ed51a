//! Reads chunk losses back from the GPU's loss log without stalling: ranges of slots are
//! copied to staging buffers and mapped asynchronously; values are collected when ready.

use crate::engine::{Engine, LOSS_LOG_SLOTS};
use crate::error::Result;
use crate::gpu::PendingRead;
use std::collections::VecDeque;

/// Flushes at least this often, so the ring never overwrites an unread slot.
const MAX_UNFLUSHED: usize = LOSS_LOG_SLOTS / 2;

pub struct LossReader {
    /// Iteration index of the first loss not yet asked for.
    next_unflushed: u64,
    /// Iterations written so far.
    written: u64,
    pending: VecDeque<PendingRead>,
}

impl LossReader {
    pub fn new() -> Self {
        Self {
            next_unflushed: 0,
            written: 0,
            pending: VecDeque::new(),
        }
    }

    /// The loss-log slot of the next iteration; call [`LossReader::wrote`] after running it.
    pub fn next_slot(&self) -> usize {
        (self.written % LOSS_LOG_SLOTS as u64) as usize
    }

    pub fn wrote(&mut self, engine: &Engine<'_>, flush_every: usize) -> Result<()> {
        self.written += 1;
        let unflushed = (self.written - self.next_unflushed) as usize;
        if unflushed >= flush_every.clamp(1, MAX_UNFLUSHED) {
            self.flush(engine)?;
        }
        Ok(())
    }

    /// Asks for every written but unread loss.
    pub fn flush(&mut self, engine: &Engine<'_>) -> Result<()> {
        while self.next_unflushed < self.written {
            let first = (self.next_unflushed % LOSS_LOG_SLOTS as u64) as usize;
            let count = ((self.written - self.next_unflushed) as usize).min(LOSS_LOG_SLOTS - first);
            self.pending.push_back(engine.read_losses(first, count)?);
            self.next_unflushed += count as u64;
        }
        Ok(())
    }

    /// Losses that have arrived, in iteration order, without waiting.
    pub fn ready(&mut self, engine: &Engine<'_>) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        while let Some(front) = self.pending.front() {
            match front.take(engine.gpu())? {
                Some(values) => {
                    out.extend(values);
                    self.pending.pop_front();
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// Flushes and waits for every loss still in flight.
    pub fn drain(&mut self, engine: &Engine<'_>) -> Result<Vec<f32>> {
        self.flush(engine)?;
        engine.gpu().wait_idle()?;
        let out = self.ready(engine)?;
        debug_assert!(self.pending.is_empty());
        Ok(out)
    }
}

impl Default for LossReader {
    fn default() -> Self {
        Self::new()
    }
}
