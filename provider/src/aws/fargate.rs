//! Fargate task sizes: which `cpu` / `memory` pairs Fargate accepts (for
//! `ep_deployment`'s services and `ep_rds_snapshot`'s `ecs` runner), so a
//! size it would refuse at `RegisterTaskDefinition` is a validate-time
//! diagnostic instead of a failure half-way through an apply.

/// CPU units (1024 = one vCPU) Fargate offers, with the memory (MiB) each
/// allows: from, to (inclusive), step.
const SIZES: &[(u32, u32, u32, u32)] = &[
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

/// Whether Fargate offers `cpu` units at all (if it does, a refused size
/// is the memory's fault).
pub fn offers_cpu(cpu: u32) -> bool {
    SIZES.iter().any(|(c, ..)| *c == cpu)
}

/// Why Fargate would refuse a task of `cpu` units and `memory` MiB, if it would.
pub fn check_task_size(cpu: u32, memory: u32) -> Option<String> {
    let Some(&(_, from, to, step)) = SIZES.iter().find(|(c, ..)| *c == cpu) else {
        let offered: Vec<String> = SIZES.iter().map(|(c, ..)| c.to_string()).collect();
        return Some(format!(
            "Fargate offers cpu {} (1024 = one vCPU); {cpu} is not one of them",
            offered.join(", ")
        ));
    };
    // 256 CPU units allow 512, 1024 and 2048 MiB: the only row whose steps
    // do not start at its lower bound's multiple.
    let fits = if cpu == 256 {
        matches!(memory, 512 | 1024 | 2048)
    } else {
        (from..=to).contains(&memory) && (memory - from).is_multiple_of(step)
    };
    if fits {
        return None;
    }
    let allowed = if cpu == 256 {
        "512, 1024 or 2048".to_owned()
    } else {
        format!("{from} to {to} in steps of {step}")
    };
    Some(format!(
        "with cpu {cpu}, Fargate allows memory {allowed} MiB; {memory} does not fit"
    ))
}

#[cfg(test)]
mod tests {
    use super::check_task_size;

    #[test]
    fn accepts_every_documented_pair_at_the_edges() {
        for (cpu, mem) in [
            (256, 512),
            (256, 2048),
            (512, 1024),
            (512, 4096),
            (1024, 2048),
            (1024, 8192),
            (2048, 16384),
            (4096, 30720),
            (8192, 16384),
            (8192, 61440),
            (16384, 122880),
        ] {
            assert_eq!(check_task_size(cpu, mem), None, "{cpu}/{mem}");
        }
    }

    #[test]
    fn refuses_memory_that_does_not_fit_the_cpu() {
        let why = check_task_size(1024, 1024).unwrap_or_default();
        assert!(why.contains("2048 to 8192 in steps of 1024"), "{why}");
        assert!(check_task_size(256, 1536).is_some());
        assert!(check_task_size(1024, 2500).is_some());
        assert!(check_task_size(8192, 20000).is_some());
        assert!(check_task_size(4096, 31744).is_some());
    }

    #[test]
    fn refuses_cpu_fargate_does_not_offer() {
        let why = check_task_size(1000, 2048).unwrap_or_default();
        assert!(why.contains("256, 512, 1024"), "{why}");
    }
}
