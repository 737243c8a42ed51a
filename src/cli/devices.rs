//! `wgrnn devices`: every adapter, with the limits and features that matter here.

use anyhow::{bail, Result};

pub fn run() -> Result<()> {
    let adapters = wgrnn::gpu::list_adapters();
    if adapters.is_empty() {
        bail!("{}", wgrnn::gpu::NO_ADAPTER_HELP);
    }
    for (i, a) in adapters.iter().enumerate() {
        let yes = |b: bool| if b { "yes" } else { "no" };
        println!("[{i}] {}", a.name);
        println!(
            "    backend: {}   type: {}{}",
            a.backend,
            a.device_type,
            if a.is_software { " (software)" } else { "" }
        );
        println!(
            "    driver: {}",
            if a.driver.is_empty() { "-" } else { &a.driver }
        );
        println!(
            "    max storage binding: {} MiB   max buffer: {} MiB   storage buffers/stage: {}",
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_storage_buffers_per_shader_stage
        );
        println!(
            "    workgroup: x <= {}, invocations <= {}, groups/dim <= {}, shared memory {} KiB",
            a.max_compute_workgroup_size_x,
            a.max_compute_invocations_per_workgroup,
            a.max_compute_workgroups_per_dimension,
            a.max_compute_workgroup_storage_size >> 10
        );
        println!(
            "    shader-f16: {}   shader-int64: {}   timestamp queries: {}   subgroups: {}",
            yes(a.shader_f16),
            yes(a.shader_int64),
            yes(a.timestamp_query),
            match (a.subgroups, a.fixed_subgroup_size) {
                (true, Some(n)) => format!("yes ({n} lanes)"),
                (true, None) => "yes (varying size)".into(),
                (false, _) => "no".into(),
            }
        );
    }
    Ok(())
}
