//! Asynchronous readback: copy into a mappable staging buffer, map, collect later.

use super::{Buffer, Gpu};
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

const PENDING: u8 = 0;
const READY: u8 = 1;
const FAILED: u8 = 2;

/// A readback in flight: the GPU copies into a staging buffer, which is mapped
/// when the copy is done. [`PendingRead::take`] returns `None` until then.
pub struct PendingRead {
    staging: wgpu::Buffer,
    state: Arc<AtomicU8>,
    _allocation: Arc<super::Allocation>,
}

impl Gpu {
    /// Submits a copy of `bytes` bytes of `buffer` from byte `offset`, and asks for it to be
    /// mapped; never waits.
    pub fn read_later(&self, buffer: &Buffer, offset: u64, bytes: u64) -> Result<PendingRead> {
        let size = bytes.max(4);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        encoder.copy_buffer_to_buffer(&buffer.raw, offset, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let state = Arc::new(AtomicU8::new(PENDING));
        let flag = state.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            flag.store(
                if result.is_ok() { READY } else { FAILED },
                Ordering::Release,
            );
        });
        self.check()?;
        Ok(PendingRead {
            staging,
            state,
            _allocation: self.memory.track(size),
        })
    }
}

impl PendingRead {
    /// Whether the values have arrived (or the mapping failed); never waits.
    pub fn is_ready(&self, gpu: &Gpu) -> Result<bool> {
        gpu.poll_nonblocking()?;
        Ok(self.state.load(Ordering::Acquire) != PENDING)
    }

    /// The values, once the GPU has delivered them; `None` while still in flight.
    pub fn take(&self, gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        Ok(self
            .take_bytes(gpu)?
            .map(|bytes| bytemuck::pod_collect_to_vec::<u8, f32>(&bytes)))
    }

    /// The raw bytes, once the GPU has delivered them; `None` while still in flight.
    pub fn take_bytes(&self, gpu: &Gpu) -> Result<Option<Vec<u8>>> {
        gpu.poll_nonblocking()?;
        match self.state.load(Ordering::Acquire) {
            PENDING => Ok(None),
            READY => {
                let values = {
                    let view = self.staging.get_mapped_range(..).map_err(|e| {
                        Error::Gpu(format!("mapping a readback buffer failed: {e}"))
                    })?;
                    view.to_vec()
                };
                self.staging.unmap();
                Ok(Some(values))
            }
            _ => Err(Error::Gpu("mapping a readback buffer failed".into())),
        }
    }
}
