//! Every device buffer of a training engine, sized once for the largest chunk.
//! Rows are time-major: row r = t·B + b.

use crate::error::Result;
use crate::gpu::{Buffer, Dtype, Gpu};
use crate::model::{Cell, InputKind, ModelConfig, ParamLayout, TaskKind, Unit};
use crate::ops::{column_slices, split_slices, NORM_PARTIALS};

/// Loss slots in the on-device loss log (a ring; the host reads it back in batches).
pub const LOSS_LOG_SLOTS: usize = 4096;

/// The buffers of one recurrent unit (a layer read in one direction). Rows are in the
/// unit's own time (a reverse unit's row r is its sequence's step rev(r)).
pub struct UnitBuffers {
    pub pre: Buffer, // [T, B, G·H] input projection + b_ih (+ b_hh for rnn); G gate blocks
    pub hs: Buffer,  // [T + 1, B, H] hidden states; hs[0] = carried (or zero) state
    pub cs: Buffer,  // [T + 1, B, H] LSTM cell states; cs[0] = carried (LSTM only)
    pub cache: Buffer, // [T, B, 4H] gate values kept for backward (LSTM, GRU)
    pub carry: Buffer, // [B, H] hidden state carried to the next chunk (forward units)
    pub carry_c: Buffer, // [B, H] LSTM cell state carried to the next chunk
    pub dh_out: Buffer, // [T, B, H] loss gradient reaching each hidden state
    pub da: Buffer,  // [T, B, G·H] gradient at the pre-activations (pre)
    pub dhh: Buffer, // [T, B, G·H] gradient at W_hh·h + b_hh (GRU only)
    pub dstate: Buffer, // [T, B, H] gradient straight to the previous step (LSTM, GRU)
}

/// The buffers between layers of a stacked or bidirectional model (empty for one forward
/// layer, whose hidden states feed the head directly).
pub struct LayerBuffers {
    pub input_rev: Buffer, // [T, B, W] the layer's input in reversed time (bidirectional)
    pub output: Buffer,    // [T + 1, B, D·H] layer output (row block 0 unused), after dropout
    pub d_output: Buffer,  // [T, B, D·H] gradient at the layer output
}

/// How a training engine stores its numbers. `F16`: the weights the kernels read (a copy
/// of the f32 master weights refreshed every chunk) and the activations (x, pre, hs, cs,
/// cache, carried states, layer outputs) are f16; master weights, gradients, optimizer
/// state, head outputs and every accumulation stay f32.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl Precision {
    /// The element type of activation buffers and of the weight copy.
    pub fn activations(self) -> Dtype {
        match self {
            Precision::F32 => Dtype::F32,
            Precision::F16 => Dtype::F16,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            other => Err(format!("unknown precision `{other}` (expected f32 or f16)")),
        }
    }
}

/// One device buffer: its name, size in bytes and element type.
#[derive(Clone, Copy, Debug)]
pub struct BufferSpec {
    pub name: &'static str,
    pub bytes: u64,
    pub dtype: Dtype,
}

pub struct EngineBuffers {
    pub params: Buffer,          // [P] flat parameters, PyTorch order (ParamLayout)
    pub weights_half: Buffer,    // [P] f16 copy of params that the kernels read (f16 only)
    pub grads: Buffer,           // [P]
    pub moment_m: Buffer,        // [P] SGD momentum buffer or Adam's first moment
    pub moment_v: Buffer,        // [P] Adam's second moment
    pub tokens: Buffer,          // [T, B] u32 token ids (token input only)
    pub emb_present: Buffer,     // [S] u32 the chunk's distinct tokens, S = min(V, T·B)
    pub emb_offsets: Buffer,     // [S + 1] u32 where each one's rows start in emb_positions
    pub emb_positions: Buffer,   // [T·B] u32 rows, grouped by token
    pub x: Buffer,               // [T, B, I] first layer's input (features, or embeddings)
    pub dx: Buffer,              // [T, B, E] gradient of the embeddings (token input only)
    pub d_input_rev: Buffer,     // [T, B, W] a reverse unit's input gradient (bidirectional)
    pub pool_acc: Buffer,        // [B, D·H] pooling carry (sum or running max)
    pub pool_arg: Buffer,        // [B, D·H] u32 step of the max within the chunk
    pub z: Buffer,               // [B, D·H] pooled state (many-to-one)
    pub dz: Buffer,              // [B, D·H]
    pub y: Buffer,               // [R, O] head output (pre-activation); R = T·B or B
    pub dy: Buffer,              // [R, O'] rows O' = head_grad_stride(O) apart, pads 0
    pub head_weight_pad: Buffer, // [O', W] the head's weight rows, then O' - O zero rows
    pub targets: Buffer,         // [R] u32 classes or [R, O] f32 bits
    pub row_loss: Buffer,        // [R]
    pub row_metric: Buffer,      // [R] correct predictions, or the other error norm
    pub row_mask: Buffer,        // [R] f32: 1 for a valid output row, 0 for padding
    pub lengths: Buffer,         // [B] u32 valid steps of each sequence
    pub chunk_info: Buffer,      // [3] u32: inv_count (f32 bits), first step, dropout step
    pub split_scratch: Buffer,   // [S, M, N] split-K partial sums of the weight gradients
    pub step_sum: Buffer,        // [B, G·H] one step's recurrent product (GEMM-based steps)
    /// Two [B, H] f32 copies of the state a fused Elman sweep with A's windows alternates
    /// between (`ops::StepCopies`; software adapters, at least a uniform window each).
    pub step_copies: [Buffer; 2],
    /// [max(H, I), G·H] a transposed weight for the quads GEMMs: W_hhᵀ of the unit being
    /// swept back, or W_ihᵀ for the layer-input gradient dX.
    pub weight_t: Buffer,
    pub norm_partials: Buffer,   // [NORM_PARTIALS]
    pub norm: Buffer,            // [2] global gradient norm, non-finite flag
    pub norm_log: Buffer,        // [LOSS_LOG_SLOTS] gradient norm of each training chunk
    pub snapshot_params: Buffer, // [P] last good state, for --on-nonfinite rollback
    pub snapshot_m: Buffer,      // [P]
    pub snapshot_v: Buffer,      // [P]
    pub loss_log: Buffer,        // [LOSS_LOG_SLOTS] mean loss of each chunk
    pub metric_log: Buffer,      // [LOSS_LOG_SLOTS] mean metric of each chunk
    pub units: Vec<UnitBuffers>, // one per unit, in Unit::all order
    pub layers: Vec<LayerBuffers>,
    pub precision: Precision,
}

impl EngineBuffers {
    /// The weights the forward and backward kernels read: the f16 copy under
    /// `Precision::F16`, the f32 parameters otherwise.
    pub fn weights(&self) -> &Buffer {
        match self.precision {
            Precision::F32 => &self.params,
            Precision::F16 => &self.weights_half,
        }
    }
}

/// Buffer names: the first unit's keep their plain names; the others get PyTorch's suffix.
fn unit_name(kind: &str, unit: Unit) -> &'static str {
    if unit.layer == 0 && !unit.reverse {
        return crate::model::intern(kind.to_string());
    }
    let rev = if unit.reverse { "_reverse" } else { "" };
    crate::model::intern(format!("{kind}_l{}{rev}", unit.layer))
}

/// The name and size in bytes of every buffer an engine for chunks of up to `max_steps`
/// steps of `max_batch` sequences allocates (in allocation order) on a software adapter or
/// a GPU (which splits the weight gradients' long K and needs scratch for it).
pub fn buffer_sizes(
    config: &ModelConfig,
    layout: &ParamLayout,
    max_batch: usize,
    max_steps: usize,
    software: bool,
) -> Vec<(&'static str, u64)> {
    buffer_specs(
        config,
        layout,
        max_batch,
        max_steps,
        software,
        Precision::F32,
    )
    .iter()
    .map(|s| (s.name, s.bytes))
    .collect()
}

/// Values past dy's last row that the head's weight-gradient product may read (not store).
const HEAD_GRAD_SLACK: usize = 32;

/// The row stride O' of the head's output gradient dy, and the rows of the head's padded
/// weight copy: on software adapters O rounded up to a multiple of 4 (the loss writes the
/// pad columns 0), so that the head's gradient products (dW = dyᵀ·X, K = the rows, and
/// dX = dy·W with K = O') run in the quads kernels, which read rows of whole 16-byte words
/// (W1's 18 tags ran 2-4x slower in the others: BENCHMARKS.md, "the head's gradients on
/// padded rows"); O elsewhere (GPUs, and O a multiple of 4).
pub fn head_grad_stride(outputs: usize, software: bool) -> usize {
    if software {
        outputs.next_multiple_of(4)
    } else {
        outputs
    }
}

/// [`buffer_sizes`] with each buffer's element type under `precision`.
pub fn buffer_specs(
    config: &ModelConfig,
    layout: &ParamLayout,
    max_batch: usize,
    max_steps: usize,
    software: bool,
    precision: Precision,
) -> Vec<BufferSpec> {
    // f32 (and u32) buffers; activations and the weight copy (f16 under Precision::F16).
    let f = |n: usize| ((n * 4) as u64, Dtype::F32);
    let act = precision.activations();
    let a = |n: usize| ((n * act.bytes()) as u64, act);
    let (h, o, ow) = (config.hidden, config.output_size, config.output_width());
    let o_pad = head_grad_stride(o, software);
    let cell = config.cell;
    let gh = cell.gates() * h;
    let only = |yes: bool, n: usize| if yes { n } else { 0 };
    let lstm = cell == Cell::Lstm;
    let rows = max_steps * max_batch;
    let out_rows = match config.task {
        TaskKind::ManyToMany => rows,
        TaskKind::ManyToOne => max_batch,
    };
    let (vocab, embed) = match config.input {
        InputKind::Tokens { vocab, embed } => (vocab, embed),
        InputKind::Dense { .. } => (0, 0),
    };
    let tokens_rows = if vocab > 0 { rows } else { 0 };
    let widest_input = (0..config.layers)
        .map(|l| config.layer_input_width(l))
        .max()
        .unwrap_or(0);
    let stacked = !config.is_single_layer();
    let p = layout.total;
    // The optimizer updates 4 parameters at a time (ops::optimizer_step): its four buffers
    // hold P rounded up to a multiple of 4.
    let p4 = p.next_multiple_of(4);
    let mut specs: Vec<(&'static str, (u64, Dtype))> = vec![
        ("params", f(p4)),
        ("weights_half", a(only(precision == Precision::F16, p))),
        ("grads", f(p4)),
        ("moment_m", f(p4)),
        ("moment_v", f(p4)),
        ("tokens", f(tokens_rows)),
        ("emb_present", f(vocab.min(tokens_rows))),
        ("emb_offsets", f(vocab.min(tokens_rows) + 1)),
        ("emb_positions", f(tokens_rows)),
        ("x", a(rows * config.input_width())),
        ("dx", f(tokens_rows * embed)),
        (
            "d_input_rev",
            f(only(config.bidirectional, rows * widest_input)),
        ),
        ("pool_acc", f(max_batch * ow)),
        ("pool_arg", f(max_batch * ow)),
        ("z", f(max_batch * ow)),
        ("dz", f(max_batch * ow)),
        ("y", f(out_rows * o)),
        // The outer-product kernel's lanes past the head's O rows of dyᵀ read up to 32
        // columns of a row: slack past the last row, values that are never stored.
        (
            "dy",
            f(out_rows * o_pad + only(o_pad != o, HEAD_GRAD_SLACK)),
        ),
        ("head_weight_pad", a(only(o_pad != o, o_pad * ow))),
        ("targets", f(out_rows * o)),
        ("row_loss", f(out_rows)),
        ("row_metric", f(out_rows)),
        ("row_mask", f(out_rows)),
        ("lengths", f(max_batch)),
        ("chunk_info", f(3)),
        (
            "split_scratch",
            f(split_scratch_len(config, max_batch, max_steps, software)),
        ),
        ("step_sum", f(step_sum_len(config, max_batch))),
        ("step_copy_0", f(step_copy_len(config, max_batch, software))),
        ("step_copy_1", f(step_copy_len(config, max_batch, software))),
        ("weight_t", a(h.max(widest_input) * gh)),
        ("norm_partials", f(NORM_PARTIALS)),
        ("norm", f(2)),
        ("norm_log", f(LOSS_LOG_SLOTS)),
        ("snapshot_params", f(p)),
        ("snapshot_m", f(p)),
        ("snapshot_v", f(p)),
        ("loss_log", f(LOSS_LOG_SLOTS)),
        ("metric_log", f(LOSS_LOG_SLOTS)),
    ];
    for unit in Unit::all(config) {
        let forward = !unit.reverse;
        specs.extend([
            (unit_name("pre", unit), a(rows * gh)),
            (unit_name("hs", unit), a((max_steps + 1) * max_batch * h)),
            (
                unit_name("cs", unit),
                a(only(lstm, (max_steps + 1) * max_batch * h)),
            ),
            (
                unit_name("cache", unit),
                a(only(cell.is_gated(), rows * 4 * h)),
            ),
            (unit_name("carry", unit), a(only(forward, max_batch * h))),
            (
                unit_name("carry_c", unit),
                a(only(forward && lstm, max_batch * h)),
            ),
            (unit_name("dh_out", unit), f(rows * h)),
            (unit_name("da", unit), f(rows * gh)),
            (
                unit_name("dhh", unit),
                f(only(cell == Cell::Gru, rows * gh)),
            ),
            (
                unit_name("dstate", unit),
                f(only(cell.is_gated(), rows * h)),
            ),
        ]);
    }
    for layer in 0..config.layers {
        let name = |kind: &str| crate::model::intern(format!("{kind}_l{layer}"));
        specs.extend([
            (
                name("input_rev"),
                a(only(
                    config.bidirectional,
                    rows * config.layer_input_width(layer),
                )),
            ),
            (
                name("output"),
                a(only(stacked, (max_steps + 1) * max_batch * ow)),
            ),
            (name("d_output"), f(only(stacked, rows * ow))),
        ]);
    }
    specs
        .into_iter()
        .map(|(name, (bytes, dtype))| BufferSpec { name, bytes, dtype })
        .collect()
}

impl EngineBuffers {
    pub fn new(
        gpu: &Gpu,
        config: &ModelConfig,
        layout: &ParamLayout,
        max_batch: usize,
        max_steps: usize,
        precision: Precision,
    ) -> Result<Self> {
        let specs = buffer_specs(
            config,
            layout,
            max_batch,
            max_steps,
            gpu.adapter().is_software,
            precision,
        );
        let sizes: Vec<(&'static str, u64)> = specs.iter().map(|s| (s.name, s.bytes)).collect();
        check_fits(gpu, &sizes, max_batch, max_steps)?;
        let mut made = specs
            .iter()
            .map(|s| gpu.storage_typed(s.name, s.bytes, s.dtype));
        let mut next = || made.next().expect("one spec per buffer");
        let mut bufs = Self {
            params: next()?,
            weights_half: next()?,
            grads: next()?,
            moment_m: next()?,
            moment_v: next()?,
            tokens: next()?,
            emb_present: next()?,
            emb_offsets: next()?,
            emb_positions: next()?,
            x: next()?,
            dx: next()?,
            d_input_rev: next()?,
            pool_acc: next()?,
            pool_arg: next()?,
            z: next()?,
            dz: next()?,
            y: next()?,
            dy: next()?,
            head_weight_pad: next()?,
            targets: next()?,
            row_loss: next()?,
            row_metric: next()?,
            row_mask: next()?,
            lengths: next()?,
            chunk_info: next()?,
            split_scratch: next()?,
            step_sum: next()?,
            step_copies: [next()?, next()?],
            weight_t: next()?,
            norm_partials: next()?,
            norm: next()?,
            norm_log: next()?,
            snapshot_params: next()?,
            snapshot_m: next()?,
            snapshot_v: next()?,
            loss_log: next()?,
            metric_log: next()?,
            units: Vec::new(),
            layers: Vec::new(),
            precision,
        };
        for _ in Unit::all(config) {
            bufs.units.push(UnitBuffers {
                pre: next()?,
                hs: next()?,
                cs: next()?,
                cache: next()?,
                carry: next()?,
                carry_c: next()?,
                dh_out: next()?,
                da: next()?,
                dhh: next()?,
                dstate: next()?,
            });
        }
        for _ in 0..config.layers {
            bufs.layers.push(LayerBuffers {
                input_rev: next()?,
                output: next()?,
                d_output: next()?,
            });
        }
        Ok(bufs)
    }
}

/// Scratch values for the split-K weight-gradient products (dW_ih, dW_hh, dW_head, whose K
/// is the chunk's rows) and the row-sliced bias gradients at the largest chunk; smaller
/// chunks split into no more slices.
/// Elements of `step_sum`, one step's recurrent product [B, G·H], and room for up to 8
/// split-K partial products of [B, H] (the Elman steps, the gated cells' backward steps)
/// within [`crate::ops::STEP_SPLIT_SCRATCH`] (the tuner offers the split on GPUs where its
/// slices fit; it can be forced anywhere).
pub fn step_sum_len(config: &ModelConfig, max_batch: usize) -> usize {
    let plain = max_batch * config.cell.gates() * config.hidden;
    let split = 8 * max_batch * config.hidden;
    plain.max(split.min(crate::ops::STEP_SPLIT_SCRATCH))
}

/// Elements of each of `step_copies`: [B, H] and at least a uniform window on a software
/// adapter (the only kind whose GEMMs read windows), one elsewhere.
pub fn step_copy_len(config: &ModelConfig, max_batch: usize, software: bool) -> usize {
    if software {
        (max_batch * config.hidden).max((crate::gpu::UNIFORM_WINDOW / 4) as usize)
    } else {
        1
    }
}

pub fn split_scratch_len(
    config: &ModelConfig,
    batch: usize,
    steps: usize,
    software: bool,
) -> usize {
    let rows = batch * steps;
    let gh = config.cell.gates() * config.hidden;
    let head_rows = match config.task {
        TaskKind::ManyToMany => rows,
        TaskKind::ManyToOne => batch,
    };
    [
        (gh, config.input_width(), rows),
        (gh, config.output_width(), rows),
        (gh, config.hidden, rows),
        (config.output_size, config.output_width(), head_rows),
    ]
    .into_iter()
    .map(|(m, n, k)| match split_slices(software, m, n, k) {
        1 => 0,
        slices => slices * m * n,
    })
    .chain([(rows, gh), (head_rows, config.output_size)].map(
        |(rows, columns)| match column_slices(software, rows, columns) {
            1 => 0,
            slices => slices * columns,
        },
    ))
    .max()
    .unwrap_or(0)
}

/// Refuses, before allocating anything, buffers the adapter cannot bind, naming each one
/// with the bytes it needs and the adapter's limit.
fn check_fits(gpu: &Gpu, specs: &[(&'static str, u64)], batch: usize, steps: usize) -> Result<()> {
    let limit = gpu.max_binding_bytes();
    let too_big: Vec<String> = specs
        .iter()
        .filter(|(_, b)| b.next_multiple_of(4) > limit)
        .map(|(n, b)| format!("`{n}` needs {} MiB", b.div_ceil(1 << 20)))
        .collect();
    if too_big.is_empty() {
        return Ok(());
    }
    let total: u64 = specs.iter().map(|(_, b)| b).sum();
    Err(crate::error::Error::Limit(format!(
        "batch {batch} x {steps} steps does not fit this adapter: {}; it binds at most {} MiB per buffer \
         (max_storage_buffer_binding_size); all buffers together need {} MiB. Use a smaller --batch, --seq-len or model",
        too_big.join(", "),
        limit >> 20,
        total.div_ceil(1 << 20)
    )))
}
