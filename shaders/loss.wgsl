// Loss forward and backward, fused, one invocation per output row.
//   y: [R, O] head outputs (pre-activation), targets: [R] class ids (cross-entropy) or
//   [R, O] f32 values stored as raw bits (bce, mse, mae).
//   dy[r, o] = d(mean loss)/d y[r, o];  row_loss[r] = sum_o loss(r, o) (not yet averaged).
//   dy's rows are dy_stride >= O apart; columns O .. dy_stride - 1 are written 0 (a padded
//   row: the head's gradient products then run on rows of whole 16-byte words).
// cross-entropy: log-softmax over O; loss = logsumexp(y) - y[target]; dy = softmax - onehot.
// bce:           BCEWithLogits: max(y, 0) - y·t + log(1 + exp(-|y|)); dy = sigmoid(y) - t.
// mse / mae:     a = act(y) with act = identity | relu | sigmoid; (a - t)² or |a - t|.
// Padded rows (mask[r] = 0) add no loss and get dy = 0. Every dy is scaled by inv_count =
// 1 / (number of valid averaged elements), PyTorch's "mean" (with ignore_index for padding);
// inv_count changes per chunk, so it comes from chunk_info[0] (f32 bits).
// Dispatch: 256 invocations per workgroup over R rows (x + y · groups.x · 256).

struct LossParams {
    rows: u32,        // R
    outputs: u32,     // O
    kind: u32,        // 0 cross-entropy, 1 bce, 2 mse, 3 mae
    activation: u32,  // for mse/mae: 0 identity, 1 relu, 2 sigmoid
    dy_stride: u32,   // dy's row stride (>= O)
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

const CROSS_ENTROPY: u32 = 0u;
const BCE: u32 = 1u;
const MSE: u32 = 2u;
const RELU: u32 = 1u;
const SIGMOID: u32 = 2u;

@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;        // [R] 1 valid, 0 padding
@group(0) @binding(6) var<storage, read> chunk_info: array<u32>;  // [2] (inv_count bits, first_step)
@group(0) @binding(7) var<storage, read_write> row_metric: array<f32>; // [R]

fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

@compute @workgroup_size(256)
fn loss_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = gid.x + gid.y * groups.x * 256u;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.outputs;
    let dy_base = r * p.dy_stride;
    for (var o = p.outputs; o < p.dy_stride; o++) {
        dy[dy_base + o] = 0.0;
    }
    let inv_count = bitcast<f32>(chunk_info[0]);
    if (mask[r] == 0.0) {
        row_loss[r] = 0.0;
        row_metric[r] = 0.0;
        for (var o = 0u; o < p.outputs; o++) {
            dy[dy_base + o] = 0.0;
        }
        return;
    }
    if (p.kind == CROSS_ENTROPY) {
        var m = y[base];
        var best = 0u;
        for (var o = 1u; o < p.outputs; o++) {
            if (y[base + o] > m) {
                m = y[base + o];
                best = o;
            }
        }
        var s = 0.0;
        for (var o = 0u; o < p.outputs; o++) {
            s = s + exp(y[base + o] - m);
        }
        let target_class = targets[r];
        let lse = m + log(s);
        row_loss[r] = lse - y[base + target_class];
        row_metric[r] = select(0.0, 1.0, best == target_class);
        for (var o = 0u; o < p.outputs; o++) {
            let prob = exp(y[base + o] - m) / s;
            dy[dy_base + o] = (prob - select(0.0, 1.0, o == target_class)) * inv_count;
        }
        return;
    }
    var total = 0.0;
    var metric = 0.0;
    for (var o = 0u; o < p.outputs; o++) {
        let x = y[base + o];
        let t = bitcast<f32>(targets[base + o]);
        if (p.kind == BCE) {
            total = total + max(x, 0.0) - x * t + log(1.0 + exp(-abs(x)));
            metric = metric + select(0.0, 1.0, (x > 0.0) == (t > 0.5));
            dy[dy_base + o] = (sigmoid(x) - t) * inv_count;
            continue;
        }
        var a = x;
        var da_dx = 1.0;
        if (p.activation == RELU) {
            a = max(x, 0.0);
            da_dx = select(0.0, 1.0, x > 0.0);
        } else if (p.activation == SIGMOID) {
            a = sigmoid(x);
            da_dx = a * (1.0 - a);
        }
        let diff = a - t;
        if (p.kind == MSE) {
            total = total + diff * diff;
            metric = metric + abs(diff);
            dy[dy_base + o] = 2.0 * diff * da_dx * inv_count;
        } else {
            total = total + abs(diff);
            metric = metric + diff * diff;
            dy[dy_base + o] = sign(diff) * da_dx * inv_count;
        }
    }
    row_loss[r] = total;
    row_metric[r] = metric;
}
