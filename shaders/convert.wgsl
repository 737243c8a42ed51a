// Element-type and layout conversions, each value stored in its buffer's type.
//   convert_elements:   dst[offset + i] = src[offset + i] for i < count. Used by --precision
//                       f16 to refresh the f16 copy of the weights from the f32 master weights
//                       at the start of every chunk (round to nearest even; values past f16's
//                       range become infinities, which the non-finite check then reports).
//                       Shapes: src, dst: [offset + count] at least.
//   transpose_elements: dst[c·rows + r] = src[offset + r·cols + c] for r < rows, c < cols
//                       (count = rows·cols): src [rows, cols] at offset, dst [cols, rows] at 0.
//                       A copy of W_hh for the GEMMs that read it along k with unit stride.
//   transpose_quads:    transpose_elements where rows, cols and offset are multiples of 4 and
//                       both buffers f32 (software adapters): invocation (x, y) moves the 4x4
//                       block at src rows 4y .., columns 4x .. to dst rows 4x .., columns 4y ..
//                       as 4 16-byte words in and 4 out (`quad_word`, appended by the host:
//                       two 64-bit integers in the Longs pipeline), instead of 16 values one
//                       load, one store and one integer division each (BENCHMARKS.md,
//                       "transposes by 4x4 blocks"). Bindings 0, 3 (src), 4 (dst).
// Dispatch: 256 invocations per workgroup, spread over x and y (index = x + y ·
// num_workgroups.x · 256); transpose_quads: workgroups of 8, (ceil(cols / 32), rows / 4, 1).

struct CastParams {
    count: u32,
    offset: u32,
    rows: u32,  // transpose_elements only
    cols: u32,  // transpose_elements only
}

@group(0) @binding(0) var<uniform> p: CastParams;
@group(0) @binding(1) var<storage, read> src: array<src_t>;
@group(0) @binding(2) var<storage, read_write> dst: array<dst_t>;

@compute @workgroup_size(256)
fn convert_elements(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.count) {
        return;
    }
    dst[p.offset + i] = dst_t(f32(src[p.offset + i]));
}

@compute @workgroup_size(256)
fn transpose_elements(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.count) {
        return;
    }
    let c = i / p.rows;
    let r = i % p.rows;
    dst[i] = dst_t(f32(src[p.offset + r * p.cols + c]));
}

@group(0) @binding(3) var<storage, read> src_words: array<quad_word>;
@group(0) @binding(4) var<storage, read_write> dst_words: array<quad_word>;

@compute @workgroup_size(8)
fn transpose_quads(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c0 = 4u * gid.x;
    let r0 = 4u * gid.y;
    if (c0 >= p.cols || r0 >= p.rows) {
        return;
    }
    // src rows r0 .. r0 + 3 at columns c0 .. c0 + 3, one word each (a row is cols / 4 words).
    let line = p.cols / 4u;
    let s = (p.offset + r0 * p.cols + c0) / 4u;
    let a = quad_f32s(src_words[s]);
    let b = quad_f32s(src_words[s + line]);
    let c = quad_f32s(src_words[s + 2u * line]);
    let d = quad_f32s(src_words[s + 3u * line]);
    // dst rows c0 .. c0 + 3 (src's columns) at columns r0 .. r0 + 3.
    let column = p.rows / 4u;
    let t = (c0 * p.rows + r0) / 4u;
    dst_words[t] = f32s_word(vec4<f32>(a.x, b.x, c.x, d.x));
    dst_words[t + column] = f32s_word(vec4<f32>(a.y, b.y, c.y, d.y));
    dst_words[t + 2u * column] = f32s_word(vec4<f32>(a.z, b.z, c.z, d.z));
    dst_words[t + 3u * column] = f32s_word(vec4<f32>(a.w, b.w, c.w, d.w));
}
