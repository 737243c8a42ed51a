//! The only module that touches wgpu: adapter choice, device, buffers, kernels,
//! command recording and readback. Everything above it speaks in [`Buffer`],
//! [`Kernel`], [`Binding`] and [`Recording`].

mod adapter;
mod kernels;
mod readback;

pub use adapter::{list_adapters, AdapterChoice, AdapterSummary, NO_ADAPTER_HELP};
pub use kernels::{storage_aliases, typed_source, HalfMask, Kernel, SHADER_FILES, SHADER_PARTS};
pub use readback::PendingRead;

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Size in bytes of one uniform slot: every uniform struct fits, and 256 satisfies
/// `min_uniform_buffer_offset_alignment` on every adapter.
pub const UNIFORM_SLOT: u64 = 256;

/// A device and queue on the chosen adapter, plus the compiled-kernel cache.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    summary: AdapterSummary,
    limits: wgpu::Limits,
    /// Compiled kernels by entry point and [`HalfMask`] (which bindings hold f16).
    pipelines: Mutex<HashMap<(Kernel, HalfMask), Arc<wgpu::ComputePipeline>>>,
    first_error: Arc<Mutex<Option<String>>>,
    memory: Arc<MemoryCounter>,
    checks: ShaderChecks,
}

/// Whether wgpu adds its runtime checks to wgrnn's kernels.
///
/// `Trusted` (the default) compiles them without naga's injected checks: no clamp on each
/// workgroup- or private-array index, no counter on each loop, no guard on each integer
/// division, and workgroup memory left uninitialized. Every kernel is wgrnn's own, tests
/// its global indices itself and writes each workgroup-memory slot it reads before the
/// barrier that precedes the read; storage buffers keep the driver's own robustness where
/// the adapter has it; divisors are model sizes, never zero. `Checked` keeps every check
/// (`WGRNN_SHADER_CHECKS=on`): `tests/gpu_shader_checks.rs` runs every GEMM formulation and
/// trains with every recurrence kernel both ways and compares the bits, which an
/// out-of-range index or an unwritten workgroup slot would change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShaderChecks {
    Trusted,
    Checked,
}

impl ShaderChecks {
    /// From `WGRNN_SHADER_CHECKS`: unset or `off` is `Trusted`, `on` is `Checked`.
    pub fn from_env() -> Result<Self> {
        match std::env::var("WGRNN_SHADER_CHECKS") {
            Err(_) => Ok(Self::Trusted),
            Ok(v) => match v.as_str() {
                "off" | "" => Ok(Self::Trusted),
                "on" => Ok(Self::Checked),
                other => Err(Error::Config(format!(
                    "WGRNN_SHADER_CHECKS is `{other}`; expected `on` or `off`"
                ))),
            },
        }
    }
}

/// How long a wait for the GPU may take before it counts as a hang.
pub const GPU_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The element type of a storage buffer: f32, or f16 (`--precision f16`'s weight copy and
/// activations; needs the adapter's shader-f16 feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    F32,
    F16,
}

impl Dtype {
    pub fn bytes(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
        }
    }
}

/// A storage or uniform buffer on the device, labelled with what it holds.
#[derive(Clone)]
pub struct Buffer {
    raw: wgpu::Buffer,
    label: Arc<str>,
    dtype: Dtype,
    _allocation: Arc<Allocation>,
}

/// Counts a buffer's bytes in its device's total while it lives.
struct Allocation {
    bytes: u64,
    counter: Arc<MemoryCounter>,
}

#[derive(Default)]
struct MemoryCounter {
    current: std::sync::atomic::AtomicU64,
    peak: std::sync::atomic::AtomicU64,
}

impl MemoryCounter {
    fn track(self: &Arc<Self>, bytes: u64) -> Arc<Allocation> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.current.fetch_add(bytes, SeqCst) + bytes;
        self.peak.fetch_max(now, SeqCst);
        Arc::new(Allocation {
            bytes,
            counter: self.clone(),
        })
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        self.counter
            .current
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Buffer {
    pub fn size_bytes(&self) -> u64 {
        self.raw.size()
    }
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The element type (uniform buffers count as f32).
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }
}

/// One binding slot of a kernel: a whole storage buffer, one uniform slot, a
/// [`UNIFORM_WINDOW`]-byte window of a storage buffer read as a uniform buffer (from a byte
/// offset that is a multiple of [`Gpu::uniform_window_alignment`]), or a slot the kernel's
/// entry point does not declare.
#[derive(Clone, Copy)]
pub enum Resource<'a> {
    Storage(&'a Buffer),
    UniformSlot(&'a Buffer, u64),
    UniformWindow(&'a Buffer, u64),
    Unused,
}

/// Bytes of a [`Resource::UniformWindow`]: the smallest `max_uniform_buffer_binding_size`
/// that Vulkan allows, and lavapipe's.
pub const UNIFORM_WINDOW: u64 = 64 << 10;

/// A kernel with its buffers bound, ready to dispatch.
#[derive(Clone)]
pub struct Binding {
    pipeline: Arc<wgpu::ComputePipeline>,
    group: wgpu::BindGroup,
    /// The kernel (its entry point names its time under [`ProfileBy::Kernel`]).
    kernel: Kernel,
}

impl Binding {
    /// The kernel bound (which formulation and variant a launch runs).
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The kernel's entry point.
    pub fn entry(&self) -> &'static str {
        self.kernel.entry()
    }
}

/// What [`Gpu::submit_profiled`] times: each phase (the runs of dispatches between
/// [`Recording::phase`] marks), or each kernel, summed over its dispatches, every dispatch in
/// a timed pass of its own (so each also carries a pass's fixed cost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileBy {
    Phase,
    Kernel,
}

/// One recorded operation of a training chunk.
#[derive(Clone)]
enum Op {
    Dispatch {
        binding: Binding,
        groups: [u32; 3],
    },
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
    Clear {
        buffer: wgpu::Buffer,
        offset: u64,
        size: Option<u64>,
    },
    /// Names the dispatches that follow (for per-phase timing; free otherwise).
    Phase(&'static str),
}

/// A [`Recording`] recorded into a command buffer, to be submitted once.
pub struct Encoded(wgpu::CommandBuffer);

/// What a [`Recording`] holds: each dispatch and each copy or clear costs a command of its
/// own on the adapter (on lavapipe tens of microseconds a dispatch, whatever it computes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommandCounts {
    pub dispatches: usize,
    pub copies_and_clears: usize,
}

/// An ordered list of dispatches and copies, submitted as one command buffer.
#[derive(Clone, Default)]
pub struct Recording {
    ops: Vec<Op>,
}

impl Recording {
    pub fn new() -> Self {
        Self::default()
    }
    /// How many dispatches, and copies and clears, it holds.
    pub fn command_counts(&self) -> CommandCounts {
        let mut counts = CommandCounts::default();
        for op in &self.ops {
            match op {
                Op::Dispatch { .. } => counts.dispatches += 1,
                Op::Copy { .. } | Op::Clear { .. } => counts.copies_and_clears += 1,
                Op::Phase(_) => {}
            }
        }
        counts
    }
    /// Dispatches `binding` over `groups` workgroups.
    pub fn dispatch(&mut self, binding: &Binding, groups: [u32; 3]) {
        if groups.iter().all(|&g| g > 0) {
            self.ops.push(Op::Dispatch {
                binding: binding.clone(),
                groups,
            });
        }
    }
    /// Copies `size` bytes between two distinct buffers.
    pub fn copy(
        &mut self,
        src: &Buffer,
        src_offset: u64,
        dst: &Buffer,
        dst_offset: u64,
        size: u64,
    ) {
        if size > 0 {
            self.ops.push(Op::Copy {
                src: src.raw.clone(),
                src_offset,
                dst: dst.raw.clone(),
                dst_offset,
                size,
            });
        }
    }
    /// Fills `buffer` with zero bytes.
    pub fn clear(&mut self, buffer: &Buffer) {
        self.ops.push(Op::Clear {
            buffer: buffer.raw.clone(),
            offset: 0,
            size: None,
        });
    }
    /// Zeroes `size` bytes of `buffer` from byte `offset` (both multiples of 4).
    pub fn clear_range(&mut self, buffer: &Buffer, offset: u64, size: u64) {
        if size > 0 {
            self.ops.push(Op::Clear {
                buffer: buffer.raw.clone(),
                offset,
                size: Some(size),
            });
        }
    }
    /// Starts a named phase: with [`Gpu::submit_profiled`] the GPU time of the dispatches up
    /// to the next phase is measured; [`Gpu::submit`] ignores it.
    pub fn phase(&mut self, name: &'static str) {
        self.ops.push(Op::Phase(name));
    }
}

impl Gpu {
    /// Opens a device on the adapter that `choice` names, its kernels compiled with the
    /// checks `WGRNN_SHADER_CHECKS` asks for ([`ShaderChecks`]).
    pub fn new(choice: &AdapterChoice) -> Result<Self> {
        Self::with_shader_checks(choice, ShaderChecks::from_env()?)
    }

    /// Opens a device on the adapter that `choice` names, its kernels compiled with `checks`.
    pub fn with_shader_checks(choice: &AdapterChoice, checks: ShaderChecks) -> Result<Self> {
        let instance = adapter::instance();
        let adapter = adapter::choose(adapter::all_adapters(&instance), choice)?;
        let summary = AdapterSummary {
            shader_checks: checks == ShaderChecks::Checked,
            ..adapter::summarize(&adapter)
        };
        // Ask for everything the adapter offers: the WebGPU defaults (128 MiB bindings,
        // 8 storage buffers per stage) are below what most adapters have.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgrnn"),
            // Timestamp queries, where the adapter has them, for `wgrnn bench`'s phase times;
            // subgroup operations for the GEMM variant that uses them; f16 for --precision f16;
            // 64-bit integers for the outer-product kernel's 8-byte storage words.
            required_features: adapter.features()
                & (wgpu::Features::TIMESTAMP_QUERY
                    | wgpu::Features::SUBGROUP
                    | wgpu::Features::SHADER_F16
                    | wgpu::Features::SHADER_INT64),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("could not open a device on {}: {e}", summary.name)))?;
        let first_error = Arc::new(Mutex::new(None::<String>));
        let sink = first_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));
        let lost = first_error.clone();
        device.set_device_lost_callback(move |reason, message| {
            let mut slot = lost.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(format!("the device was lost ({reason:?}): {message}"));
            }
        });
        Ok(Self {
            device,
            queue,
            summary,
            limits,
            pipelines: Mutex::new(HashMap::new()),
            first_error,
            memory: Arc::default(),
            checks,
        })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// Largest storage binding this device allows, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }

    /// The byte alignment of a [`Resource::UniformWindow`]'s offset, or None where windows are
    /// not offered: the adapter binds less than [`UNIFORM_WINDOW`] bytes of a uniform buffer,
    /// or its subgroups are not 8 lanes (only the 8-lane subgroup GEMMs read windows, so
    /// elsewhere storage buffers are created without the uniform usage they need).
    pub fn uniform_window_alignment(&self) -> Option<u64> {
        (self.limits.max_uniform_buffer_binding_size >= UNIFORM_WINDOW
            && self.summary.fixed_subgroup_size == Some(8))
        .then_some(u64::from(self.limits.min_uniform_buffer_offset_alignment))
    }

    /// Returns the first wgpu validation or device error seen since the last call.
    pub fn check(&self) -> Result<()> {
        let mut slot = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some(message) => Err(Error::Gpu(message)),
            None => Ok(()),
        }
    }

    /// A zero-filled f32 (or u32) storage buffer of `bytes` bytes (at least 4).
    pub fn storage(&self, label: &str, bytes: u64) -> Result<Buffer> {
        self.storage_typed(label, bytes, Dtype::F32)
    }

    /// A zero-filled storage buffer of `bytes` bytes (at least 4) of `dtype` elements.
    pub fn storage_typed(&self, label: &str, bytes: u64, dtype: Dtype) -> Result<Buffer> {
        if dtype == Dtype::F16 && !self.summary.shader_f16 {
            return Err(Error::Gpu(format!(
                "{} has no shader-f16 feature: f16 storage (--precision f16) is not available \
                 on it; use --precision f32",
                self.summary.name
            )));
        }
        let mut size = bytes.max(4).next_multiple_of(4);
        if let Some(align) = self.uniform_window_alignment() {
            if size >= UNIFORM_WINDOW {
                // Whole alignment units (and 16-byte words), so that an aligned window can
                // end at the last element (`ops::window_chunks`).
                size = size.next_multiple_of(align.max(16));
            }
        }
        if size > self.max_binding_bytes() {
            return Err(Error::Limit(format!(
                "buffer `{label}` needs {size} bytes but this adapter binds at most {} bytes \
                 (max_storage_buffer_binding_size); use a smaller --batch, --seq-len or model",
                self.max_binding_bytes()
            )));
        }
        let raw = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            // UNIFORM where GEMM kernels may read a window of an operand as a uniform buffer.
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST
                | if self.uniform_window_alignment().is_some() {
                    wgpu::BufferUsages::UNIFORM
                } else {
                    wgpu::BufferUsages::empty()
                },
            mapped_at_creation: false,
        });
        Ok(Buffer {
            raw,
            label: label.into(),
            dtype,
            _allocation: self.memory.track(size),
        })
    }

    /// Bytes of device buffers that wgrnn holds now, and the most it has held at once.
    pub fn buffer_bytes(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.memory.current.load(SeqCst),
            self.memory.peak.load(SeqCst),
        )
    }

    /// A storage buffer holding `data`.
    pub fn storage_from<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<Buffer> {
        let buffer = self.storage(label, std::mem::size_of_val(data) as u64)?;
        self.write(&buffer, 0, data);
        Ok(buffer)
    }

    /// A uniform buffer of `slots` slots of [`UNIFORM_SLOT`] bytes each.
    pub fn uniform_slots(&self, label: &str, slots: usize) -> Buffer {
        let raw = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: UNIFORM_SLOT * slots.max(1) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bytes = raw.size();
        Buffer {
            raw,
            label: label.into(),
            dtype: Dtype::F32,
            _allocation: self.memory.track(bytes),
        }
    }

    /// Queues a write of `data` at byte `offset`; it lands before the next submit runs.
    pub fn write<T: bytemuck::Pod>(&self, buffer: &Buffer, offset: u64, data: &[T]) {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if bytes.is_empty() {
            return;
        }
        if bytes.len().is_multiple_of(4) {
            self.queue.write_buffer(&buffer.raw, offset, bytes);
        } else {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().next_multiple_of(4), 0);
            self.queue.write_buffer(&buffer.raw, offset, &padded);
        }
    }

    /// Queues a write of f32 `values` at element `offset` of `buffer`, stored in the buffer's
    /// element type (rounded to nearest for f16). An f16 buffer takes even offsets only, and
    /// an odd count also zeroes the element after the last (writes are whole 4-byte words).
    pub fn write_f32(&self, buffer: &Buffer, offset: usize, values: &[f32]) -> Result<()> {
        match buffer.dtype {
            Dtype::F32 => self.write(buffer, (offset * 4) as u64, values),
            Dtype::F16 => {
                if !offset.is_multiple_of(2) {
                    return Err(Error::Gpu(format!(
                        "f16 buffer `{}` written at odd element {offset}",
                        buffer.label
                    )));
                }
                let halves: Vec<half::f16> =
                    values.iter().map(|&v| half::f16::from_f32(v)).collect();
                self.write(buffer, (offset * 2) as u64, &halves);
            }
        }
        Ok(())
    }

    /// Binds `resources` to binding slots 0, 1, 2, … of `kernel`, compiled for the element
    /// types of the storage buffers bound.
    pub fn bind(&self, kernel: Kernel, resources: &[Resource<'_>]) -> Binding {
        let mut half = HalfMask::default();
        for (i, r) in resources.iter().enumerate() {
            if let Resource::Storage(b) = r {
                if b.dtype == Dtype::F16 {
                    half = half.with(i as u32);
                }
            }
        }
        let pipeline = self.pipeline(kernel, half);
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = resources
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let resource = match *r {
                    Resource::Storage(b) => b.raw.as_entire_binding(),
                    Resource::UniformSlot(b, slot) => {
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &b.raw,
                            offset: slot * UNIFORM_SLOT,
                            size: wgpu::BufferSize::new(UNIFORM_SLOT),
                        })
                    }
                    Resource::UniformWindow(b, offset) => {
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &b.raw,
                            offset,
                            size: wgpu::BufferSize::new(UNIFORM_WINDOW),
                        })
                    }
                    Resource::Unused => return None,
                };
                Some(wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource,
                })
            })
            .collect();
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.entry()),
            layout: &layout,
            entries: &entries,
        });
        Binding {
            pipeline,
            group,
            kernel,
        }
    }

    fn pipeline(&self, kernel: Kernel, half: HalfMask) -> Arc<wgpu::ComputePipeline> {
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry((kernel, half))
            .or_insert_with(|| {
                let source = kernel.source_for(half).unwrap_or_else(|e| panic!("{e}"));
                let descriptor = wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.file()),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                };
                let module = match self.checks {
                    ShaderChecks::Checked => self.device.create_shader_module(descriptor),
                    // SAFETY: wgrnn's kernels index their arrays within bounds (each global
                    // index is tested in the kernel, each workgroup or private index is in
                    // range by construction), have no unbounded loops and divide by nonzero
                    // values only; see `ShaderChecks`.
                    ShaderChecks::Trusted => unsafe {
                        self.device.create_shader_module_trusted(
                            descriptor,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    },
                };
                Arc::new(
                    self.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some(kernel.entry()),
                            layout: None,
                            module: &module,
                            entry_point: Some(kernel.entry()),
                            compilation_options: wgpu::PipelineCompilationOptions {
                                constants: kernel.constants(),
                                // Every workgroup slot a kernel reads is written first.
                                zero_initialize_workgroup_memory: self.checks
                                    == ShaderChecks::Checked,
                            },
                            cache: None,
                        }),
                )
            })
            .clone()
    }

    /// Records `recording` into one command buffer and submits it once.
    pub fn submit(&self, recording: &Recording) -> Result<()> {
        self.submit_encoded(self.encode_for_later(recording))
    }

    /// Records `recording` into a command buffer to submit later with
    /// [`Gpu::submit_encoded`]: the host's share of a submit, done ahead (wgpu validates and
    /// records every pass here, about a microsecond an operation). Queue writes made in
    /// between still land before it runs: they take effect at the next submit, whenever the
    /// command buffer was recorded.
    pub fn encode_for_later(&self, recording: &Recording) -> Encoded {
        let (encoder, _) = self.encode(recording, None);
        Encoded(encoder.finish())
    }

    /// Submits a command buffer recorded by [`Gpu::encode_for_later`].
    pub fn submit_encoded(&self, encoded: Encoded) -> Result<()> {
        self.queue.submit([encoded.0]);
        self.check()
    }

    /// Like [`Gpu::submit`], but times each phase with timestamp queries (one compute pass per
    /// run of dispatches) and waits: `(phase, milliseconds of GPU time)` in order. Empty when
    /// the adapter has no timestamp queries.
    pub fn submit_profiled(
        &self,
        recording: &Recording,
        by: ProfileBy,
    ) -> Result<Vec<(&'static str, f64)>> {
        if by == ProfileBy::Kernel {
            // Each dispatch a phase of its own, named after its kernel.
            let mut split = Recording::new();
            for op in &recording.ops {
                match op {
                    Op::Dispatch { binding, .. } => {
                        split.ops.push(Op::Phase(binding.entry()));
                        split.ops.push(op.clone());
                    }
                    Op::Phase(_) => {}
                    _ => split.ops.push(op.clone()),
                }
            }
            return self.submit_profiled(&split, ProfileBy::Phase);
        }
        if !self
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            self.submit(recording)?;
            self.wait_idle()?;
            return Ok(Vec::new());
        }
        // With timing, every run of dispatches between other operations is its own pass.
        let ops = &recording.ops;
        let passes = (0..ops.len())
            .filter(|&i| {
                matches!(ops[i], Op::Dispatch { .. })
                    && (i == 0 || !matches!(ops[i - 1], Op::Dispatch { .. }))
            })
            .count()
            .max(1) as u32;
        let query_set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("phases"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * passes,
        });
        let (mut encoder, pass_phases) = self.encode(recording, Some(&query_set));
        let bytes = 16 * passes as u64;
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.resolve_query_set(&query_set, 0..2 * passes, &resolve, 0);
        encoder.copy_buffer_to_buffer(&resolve, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        staging.map_async(wgpu::MapMode::Read, .., |_| {});
        self.wait_idle()?;
        let ticks: Vec<u64> = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| Error::Gpu(format!("reading timestamps failed: {e}")))?;
            bytemuck::cast_slice::<u8, u64>(&view).to_vec()
        };
        staging.unmap();
        let period_ns = self.queue.get_timestamp_period() as f64;
        let mut out: Vec<(&'static str, f64)> = Vec::new();
        for (k, name) in pass_phases.iter().enumerate() {
            let ms = ticks[2 * k + 1].saturating_sub(ticks[2 * k]) as f64 * period_ns / 1e6;
            match out.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 += ms,
                None => out.push((name, ms)),
            }
        }
        Ok(out)
    }

    /// Encodes `recording`; with a query set, every compute pass writes its begin and end
    /// timestamps (pass k at 2k and 2k + 1). Returns the phase of each compute pass.
    fn encode(
        &self,
        recording: &Recording,
        timestamps: Option<&wgpu::QuerySet>,
    ) -> (wgpu::CommandEncoder, Vec<&'static str>) {
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("chunk"),
            });
        let ops = &recording.ops;
        let mut phase = "unnamed";
        let mut pass_phases = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            match &ops[i] {
                Op::Dispatch { .. } => {
                    let k = pass_phases.len() as u32;
                    let writes = timestamps.map(|query_set| wgpu::ComputePassTimestampWrites {
                        query_set,
                        beginning_of_pass_write_index: Some(2 * k),
                        end_of_pass_write_index: Some(2 * k + 1),
                    });
                    pass_phases.push(phase);
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(phase),
                        timestamp_writes: writes,
                    });
                    while i < ops.len() {
                        match &ops[i] {
                            Op::Dispatch { binding, groups } => {
                                pass.set_pipeline(&binding.pipeline);
                                pass.set_bind_group(0, &binding.group, &[]);
                                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                            }
                            // Without timing, a phase change does not split the pass.
                            Op::Phase(name) if timestamps.is_none() => phase = name,
                            _ => break,
                        }
                        i += 1;
                    }
                }
                Op::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    size,
                } => {
                    encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                    i += 1;
                }
                Op::Clear {
                    buffer,
                    offset,
                    size,
                } => {
                    encoder.clear_buffer(buffer, *offset, *size);
                    i += 1;
                }
                Op::Phase(name) => {
                    phase = name;
                    i += 1;
                }
            }
        }
        (encoder, pass_phases)
    }

    /// Blocks until all submitted work has finished.
    pub fn wait_idle(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(GPU_TIMEOUT),
            })
            .map_err(|e| match e {
                wgpu::PollError::Timeout => Error::Gpu(format!(
                    "the GPU did not finish within {} s: the device may be hung",
                    GPU_TIMEOUT.as_secs()
                )),
                e => Error::Gpu(format!("waiting for the device failed: {e}")),
            })?;
        self.check()
    }

    /// Reads `count` f32 values of `buffer` starting at element `offset`, waiting for the GPU.
    /// An f16 buffer's values are widened to f32.
    pub fn read_f32(&self, buffer: &Buffer, offset: usize, count: usize) -> Result<Vec<f32>> {
        let incomplete = || Error::Gpu(format!("readback of `{}` did not complete", buffer.label));
        if buffer.dtype == Dtype::F16 {
            // Whole 4-byte words around the wanted halves.
            let first = offset & !1;
            let words = (offset + count).div_ceil(2) - first / 2;
            let pending = self.read_later(buffer, (first * 2) as u64, (words * 4) as u64)?;
            self.wait_idle()?;
            let raw = pending.take_bytes(self)?.ok_or_else(incomplete)?;
            let halves: Vec<half::f16> = bytemuck::pod_collect_to_vec(&raw);
            let skip = offset - first;
            return Ok(halves[skip..skip + count]
                .iter()
                .map(|v| v.to_f32())
                .collect());
        }
        let pending = self.read_later(buffer, (offset * 4) as u64, (count * 4) as u64)?;
        self.wait_idle()?;
        pending.take(self)?.ok_or_else(incomplete)
    }

    /// Reads a whole buffer as f32 values, waiting for the GPU.
    pub fn read_all_f32(&self, buffer: &Buffer) -> Result<Vec<f32>> {
        let count = buffer.size_bytes() as usize / buffer.dtype.bytes();
        self.read_f32(buffer, 0, count)
    }

    /// Lets finished GPU work run its callbacks without blocking.
    pub fn poll_nonblocking(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Poll)
            .map_err(|e| Error::Gpu(format!("polling the device failed: {e}")))?;
        self.check()
    }
}
