// The adapter's multiply-add ceiling: each invocation runs `iterations` rounds of 8
// independent vec4 multiply-add chains, one step of each per round (32 scalar chains: no
// loads in the loop, and the loop's own counter and branch spread over 32 multiply-adds;
// one step per round, so no compiler can merge steps), then stores one value so the work
// cannot be optimised away. FLOPs = 2 · 32 · iterations · invocations.
// Dispatch: (groups, 1, 1) workgroups of 256.

struct CeilingParams {
    iterations: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: CeilingParams;
@group(0) @binding(1) var<storage, read_write> sink: array<f32>;

@compute @workgroup_size(256)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>) {
    let seed = vec4<f32>(f32(gid.x) * 1e-7) + vec4<f32>(0.0, 0.01, 0.02, 0.03);
    var a0 = seed; var a1 = seed + 0.1; var a2 = seed + 0.2; var a3 = seed + 0.3;
    var a4 = seed + 0.4; var a5 = seed + 0.5; var a6 = seed + 0.6; var a7 = seed + 0.7;
    let m = vec4<f32>(0.999999);
    let c = vec4<f32>(1e-7);
    for (var i = 0u; i < p.iterations; i++) {
        a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c;
        a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
    }
    let total = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    sink[gid.x] = total.x + total.y + total.z + total.w;
}
