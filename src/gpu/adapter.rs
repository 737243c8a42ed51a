//! Adapter discovery and choice: real GPU, software adapter, or by name.

use crate::error::{Error, Result};

/// Which adapter a command should run on (`--adapter`, or `WGRNN_ADAPTER`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    /// Prefer a real GPU; fall back to a software adapter.
    Auto,
    /// A real GPU only (discrete, integrated or virtual).
    Gpu,
    /// A CPU software adapter only (e.g. Mesa lavapipe).
    Software,
    /// The first adapter whose name contains this text (case-insensitive).
    Name(String),
}

impl std::str::FromStr for AdapterChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let trimmed = s.trim();
        match trimmed.to_ascii_lowercase().as_str() {
            "" => Err(Error::Config(
                "--adapter must not be empty (auto, gpu, software or part of a name)".into(),
            )),
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "software" | "cpu" => Ok(Self::Software),
            _ => Ok(Self::Name(trimmed.to_string())),
        }
    }
}

/// What `wgrnn devices` prints for one adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub is_software: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroup_size_x: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub shader_f16: bool,
    /// 64-bit integers in shaders (`SHADER_INT64`): the 8-byte storage words of the
    /// outer-product kernel (`OuterLongs`) and the Elman sweep (`GemmSweepLongs`).
    pub shader_int64: bool,
    pub timestamp_query: bool,
    pub subgroups: bool,
    /// The subgroup size when the adapter has subgroups of exactly one size.
    pub fixed_subgroup_size: Option<u32>,
    /// Whether the opened device compiles kernels with wgpu's runtime checks
    /// ([`super::ShaderChecks::Checked`]); false for an adapter not opened.
    pub shader_checks: bool,
}

impl AdapterSummary {
    /// Whether the streaming kernels (optimizer, gradient norm, column sums) read and write
    /// their 16-byte words as two 64-bit integers: on software adapters with
    /// `SHADER_INT64`, where lavapipe then loads a word in 2 per-lane loops instead of 4
    /// (BENCHMARKS.md, "streaming kernels in 8-byte words"). GPUs keep 16-byte vectors.
    pub fn long_storage_words(&self) -> bool {
        self.is_software && self.shader_int64
    }
}

pub(crate) fn summarize(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    let features = adapter.features();
    AdapterSummary {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
        is_software: info.device_type == wgpu::DeviceType::Cpu,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
        max_compute_workgroup_size_x: limits.max_compute_workgroup_size_x,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
        shader_f16: features.contains(wgpu::Features::SHADER_F16),
        shader_int64: features.contains(wgpu::Features::SHADER_INT64),
        timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        subgroups: features.contains(wgpu::Features::SUBGROUP),
        fixed_subgroup_size: (features.contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == info.subgroup_max_size
            && info.subgroup_min_size > 0)
            .then_some(info.subgroup_min_size),
        shader_checks: false,
    }
}

pub(crate) fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    // Compute needs no window system; GL adapters add nothing here but startup time.
    if std::env::var_os("WGPU_BACKEND").is_none() {
        desc.backends = wgpu::Backends::PRIMARY;
    }
    wgpu::Instance::new(desc)
}

pub(crate) fn all_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// Every adapter this machine offers, in discovery order.
pub fn list_adapters() -> Vec<AdapterSummary> {
    all_adapters(&instance()).iter().map(summarize).collect()
}

pub const NO_ADAPTER_HELP: &str = "no GPU or software adapter was found. \
Install a Vulkan driver for your GPU, or Mesa's software adapter lavapipe \
(Debian/Ubuntu: `sudo apt-get install mesa-vulkan-drivers`; in this repository \
`sudo .ci/install-adapter.sh` installs the recommended Mesa 25 from bookworm-backports), \
then check with `wgrnn devices`";

/// Picks the adapter `choice` names from `adapters`.
pub(crate) fn choose(
    adapters: Vec<wgpu::Adapter>,
    choice: &AdapterChoice,
) -> Result<wgpu::Adapter> {
    if adapters.is_empty() {
        return Err(Error::NoAdapter(NO_ADAPTER_HELP.into()));
    }
    let is_cpu = |a: &wgpu::Adapter| a.get_info().device_type == wgpu::DeviceType::Cpu;
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let names = || {
        adapters
            .iter()
            .map(|a| a.get_info().name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let picked = match choice {
        AdapterChoice::Auto => adapters.iter().min_by_key(|a| rank(a)).cloned(),
        AdapterChoice::Gpu => adapters
            .iter()
            .filter(|a| !is_cpu(a))
            .min_by_key(|a| rank(a))
            .cloned(),
        AdapterChoice::Software => adapters.iter().find(|a| is_cpu(a)).cloned(),
        AdapterChoice::Name(part) => {
            let part = part.to_lowercase();
            adapters
                .iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&part))
                .cloned()
        }
    };
    picked.ok_or_else(|| {
        Error::NoAdapter(match choice {
            AdapterChoice::Gpu => {
                format!("--adapter gpu: no hardware GPU adapter among: {}", names())
            }
            AdapterChoice::Software => format!(
                "--adapter software: no software adapter among: {}; {}",
                names(),
                NO_ADAPTER_HELP
            ),
            AdapterChoice::Name(part) => format!(
                "--adapter {part:?}: no adapter name contains it; found: {}",
                names()
            ),
            AdapterChoice::Auto => NO_ADAPTER_HELP.into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::AdapterChoice;

    #[test]
    fn adapter_choice_parses_keywords_and_names() {
        assert_eq!(
            "auto".parse::<AdapterChoice>().unwrap(),
            AdapterChoice::Auto
        );
        assert_eq!("GPU".parse::<AdapterChoice>().unwrap(), AdapterChoice::Gpu);
        assert_eq!(
            "software".parse::<AdapterChoice>().unwrap(),
            AdapterChoice::Software
        );
        assert_eq!(
            "llvmpipe".parse::<AdapterChoice>().unwrap(),
            AdapterChoice::Name("llvmpipe".into())
        );
        assert!("  ".parse::<AdapterChoice>().is_err());
    }
}
