//! The `dataflow` command: everything lives in the library; this only
//! turns its outcome into an exit status.

/// Records are allocated on one thread and often freed on another (a map
/// built before a shuffle is dropped after it); mimalloc frees those
/// without the arena locks of the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dataflow::cli::main()
}
