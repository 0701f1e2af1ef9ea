//! The `dataflow` command: everything lives in the library; this only
//! turns its outcome into an exit status.

/// Records are allocated on one thread and often freed on another (a map
/// built before a shuffle is dropped after it); mimalloc frees those
/// without the arena locks of the system allocator. With its `override`
/// feature it also serves the C code linked in (librdkafka allocates and
/// frees each message it produces and each header it carries).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dataflow::cli::main()
}
