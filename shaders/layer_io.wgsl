// Moving rows between the units of a stacked or bidirectional model and the layer outputs,
// with dropout between layers. Rows are time-major: r = t·B + b.
// A reverse unit runs in its own time: its row r holds the sequence's step rev(r) =
// (len_b - 1 - t)·B + b for t < len_b (len_b = min(lengths[b], T); bidirectional chunks
// start their sequences), and padding rows stay in place: rev is its own inverse.
// Dropout keeps element e = r·D·H + column of layer `layer`'s output at step `step` when
// mix(mix(mix(mix(seed) ^ step) ^ layer) ^ e) >= threshold (src/dropout.rs: the same hash),
// and scales it by 1 / (1 - p). The step is chunk_info[2], written per chunk.
//
//   reverse_rows:     dst[r, c] (+)= src[src_off + rev(r)·W + c]   src, dst: [T·B, W]
//   unit_output:      out[B·DH + r·DH + col0 + j] = drop(hs[B·H + s·H + j]), s = r or rev(r)
//                     (out: [T + 1, B, D·H], row block 0 unused; hs: [T + 1, B, H])
//   unit_output_grad: dh_out[s·H + j] = drop(d_out[r·DH + col0 + j])
//                     (d_out: [T, B, D·H]; dh_out: [T, B, H])
// Dispatch: 256 invocations per workgroup over T·B·W (reverse_rows) or T·B·H elements,
// index = x + y · num_workgroups.x · 256.

struct IoParams {
    steps: u32,      // T
    batch: u32,      // B
    width: u32,      // W (reverse_rows) or H (unit_output, unit_output_grad)
    out_width: u32,  // D·H, the layer output's width
    col0: u32,       // the unit's first column in the layer output (0, or H for reverse)
    reverse: u32,    // 1: the unit runs in reversed time
    accumulate: u32, // reverse_rows: 1 adds into dst
    dropout: u32,    // 1: apply dropout
    threshold: u32,  // round(p · 2^32)
    scale: f32,      // 1 / (1 - p)
    seed: u32,
    layer: u32,
    src_off: u32,    // reverse_rows: element offset of src's first row
}

@group(0) @binding(0) var<uniform> p: IoParams;
@group(0) @binding(1) var<storage, read> lengths: array<u32>;
@group(0) @binding(2) var<storage, read> chunk_info: array<u32>;
@group(0) @binding(3) var<storage, read> src: array<src_t>;
@group(0) @binding(4) var<storage, read_write> dst: array<dst_t>;

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

fn rev_row(r: u32) -> u32 {
    let t = r / p.batch;
    let b = r % p.batch;
    let len = min(lengths[b], p.steps);
    if (t < len) {
        return (len - 1u - t) * p.batch + b;
    }
    return r;
}

fn unit_row(r: u32) -> u32 {
    return select(r, rev_row(r), p.reverse == 1u);
}

fn mix(v: u32) -> u32 {
    var x = v;
    x = x ^ (x >> 16u);
    x = x * 0x7feb352du;
    x = x ^ (x >> 15u);
    x = x * 0x846ca68bu;
    x = x ^ (x >> 16u);
    return x;
}

fn dropped(v: f32, e: u32) -> f32 {
    if (p.dropout == 0u) {
        return v;
    }
    let h = mix(mix(mix(mix(p.seed) ^ chunk_info[2]) ^ p.layer) ^ e);
    return select(0.0, v * p.scale, h >= p.threshold);
}

@compute @workgroup_size(256)
fn reverse_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    if (idx >= p.steps * p.batch * p.width) {
        return;
    }
    // Every entry point binds the same five slots (the host binds them in order).
    _ = chunk_info[0];
    let r = idx / p.width;
    let c = idx % p.width;
    let v = f32(src[p.src_off + rev_row(r) * p.width + c]);
    if (p.accumulate == 1u) {
        dst[idx] = dst_t(f32(dst[idx]) + v);
    } else {
        dst[idx] = dst_t(v);
    }
}

@compute @workgroup_size(256)
fn unit_output(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    let h = p.width;
    if (idx >= p.steps * p.batch * h) {
        return;
    }
    let r = idx / h;
    let j = idx % h;
    let e = r * p.out_width + p.col0 + j;
    let v = f32(src[p.batch * h + unit_row(r) * h + j]);
    dst[p.batch * p.out_width + e] = dst_t(dropped(v, e));
}

@compute @workgroup_size(256)
fn unit_output_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    let h = p.width;
    if (idx >= p.steps * p.batch * h) {
        return;
    }
    let r = idx / h;
    let j = idx % h;
    let e = r * p.out_width + p.col0 + j;
    dst[unit_row(r) * h + j] = dst_t(dropped(f32(src[e]), e));
}
