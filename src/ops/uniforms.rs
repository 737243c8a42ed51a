//! Uniform slots, allocated in pages of one buffer each.

use crate::gpu::{Buffer, Gpu, Resource, UNIFORM_SLOT};

const SLOTS_PER_PAGE: usize = 64;

/// One uniform slot: a page and the slot's index in it.
#[derive(Clone)]
pub struct UniformRef {
    pub buffer: Buffer,
    pub slot: u64,
}

impl UniformRef {
    pub fn resource(&self) -> Resource<'_> {
        Resource::UniformSlot(&self.buffer, self.slot)
    }
    /// Rewrites this slot; the new value is used by the next submit.
    pub fn write<T: bytemuck::Pod>(&self, gpu: &Gpu, value: &T) {
        gpu.write(
            &self.buffer,
            self.slot * UNIFORM_SLOT,
            std::slice::from_ref(value),
        );
    }
}

/// Hands out uniform slots and writes their first value.
pub struct Uniforms {
    pages: Vec<Buffer>,
    used_in_last: usize,
}

impl Default for Uniforms {
    fn default() -> Self {
        Self::new()
    }
}

impl Uniforms {
    pub fn new() -> Self {
        Self {
            pages: Vec::new(),
            used_in_last: SLOTS_PER_PAGE,
        }
    }

    pub fn push<T: bytemuck::Pod>(&mut self, gpu: &Gpu, value: &T) -> UniformRef {
        assert!(
            std::mem::size_of::<T>() as u64 <= UNIFORM_SLOT,
            "uniform struct larger than a slot"
        );
        if self.used_in_last == SLOTS_PER_PAGE {
            self.pages
                .push(gpu.uniform_slots("uniforms", SLOTS_PER_PAGE));
            self.used_in_last = 0;
        }
        let r = UniformRef {
            buffer: self.pages.last().expect("a page was just pushed").clone(),
            slot: self.used_in_last as u64,
        };
        self.used_in_last += 1;
        r.write(gpu, value);
        r
    }
}
