//! tandem: a Jupyter kernel for Rust, built for learning synchronous versus asynchronous
//! programming. `tandem install` writes the kernelspec; `tandem kernel` is what Jupyter runs.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tandem::{
    engine, handlers, install, lab, layout, notebook, presentation, private_dirs, server, standby,
    wire,
};

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "A Jupyter kernel for Rust, built for learning sync versus async"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the kernelspec `tandem` so Jupyter can start this kernel.
    Install {
        #[command(flatten)]
        location: InstallArgs,
        /// Only write the kernelspec; skip compiling the preloaded crates.
        #[arg(long)]
        no_prebuild: bool,
    },
    /// Start JupyterLab on the shipped notebooks, with this kernel installed in .venv.
    Lab {
        /// Port for JupyterLab (default: Jupyter's own choice, 8888 or the next free one).
        #[arg(long)]
        port: Option<u16>,
        /// Do not open a web browser.
        #[arg(long)]
        no_browser: bool,
        /// Serve this folder instead of the shipped notebooks/.
        #[arg(long, value_name = "DIR")]
        notebooks: Option<PathBuf>,
        /// Further arguments passed to `jupyter lab`.
        #[arg(last = true)]
        jupyter_args: Vec<String>,
    },
    /// Compile tokio, futures and the helpers once, so that new kernels start with them
    /// ready (`install` and `lab` do this for you).
    Prebuild {
        /// Do nothing when a complete prebuild exists (kernels use this).
        #[arg(long, hide = true)]
        if_missing: bool,
        /// Only print the folder the prebuilt crates live in (tests use this).
        #[arg(long, hide = true)]
        show_dir: bool,
    },
    /// Run a notebook's cells in the terminal, without Jupyter: outputs show as they
    /// happen, and the first failing cell stops the run (exit status 1).
    Run {
        /// The notebook to run (.ipynb).
        notebook: PathBuf,
        /// Also write the executed notebook, with its outputs, here.
        #[arg(long, short = 'o', value_name = "OUT.ipynb")]
        output: Option<PathBuf>,
        /// Leave out the timing footer under each cell.
        #[arg(long)]
        no_timing: bool,
        /// Also write what tokio's runtime did in each cell as a Chrome trace here
        /// (open it in https://ui.perfetto.dev or chrome://tracing).
        #[arg(long, value_name = "TRACE.json")]
        trace: Option<PathBuf>,
    },
    /// Run the kernel (Jupyter runs this, with a connection file).
    Kernel {
        /// The connection file Jupyter wrote for this kernel.
        #[arg(long, short = 'f', required_unless_present = "standby")]
        connection_file: Option<PathBuf>,
        /// Start an engine now and wait for the next kernel to hand over its connection
        /// file (kernels start one by themselves; TANDEM_STANDBY=off turns that off).
        #[arg(long, conflicts_with = "connection_file")]
        standby: bool,
    },
}

#[derive(Args)]
#[group(multiple = false)]
struct InstallArgs {
    /// Into the user's Jupyter data directory (the default).
    #[arg(long)]
    user: bool,
    /// Into the active virtualenv or conda environment.
    #[arg(long)]
    sys_prefix: bool,
    /// Into DIR/share/jupyter/kernels.
    #[arg(long, value_name = "DIR")]
    prefix: Option<PathBuf>,
    /// For every user of this machine (a JupyterHub server): the binary, the kernelspec,
    /// the prebuilt crates and a copy of this toolchain, read-only, under PREFIX
    /// (default /usr/local, whose share/jupyter Jupyter searches by itself).
    #[arg(long, value_name = "PREFIX", num_args = 0..=1, default_missing_value = "/usr/local")]
    system: Option<PathBuf>,
}

fn main() {
    // SAFETY (the four calls): first thing in main, while the process has one thread.
    // In evcxr's child process this runs the user's code and never returns.
    unsafe { engine::runtime_hook() };
    // The engine's child processes inherit both.
    unsafe { engine::choose_marker_key() };
    let system_toolchain = unsafe { layout::use_system_toolchain() };
    let not_pinned = unsafe { private_dirs::pin_rustup_toolchain() };
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("TANDEM_LOG", "info"))
        .format_target(false)
        .init();
    if let Some(toolchain) = system_toolchain {
        log::debug!("using the installed toolchain {}", toolchain.display());
    }
    if let Some(why) = not_pinned {
        log::warn!(
            "RUSTUP_TOOLCHAIN not pinned ({why}): a rust-toolchain.toml in the notebook's \
             folder or above it chooses the compiler"
        );
    }
    if let Err(error) = run(Cli::parse()) {
        eprintln!("tandem: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Install {
            location: args,
            no_prebuild,
        } => {
            if let Some(prefix) = args.system {
                let installed = install::system::install(&prefix)?;
                println!(
                    "Installed tandem for every user: {}, kernelspec {} ({}) in {}, \
                     toolchain in {}, lessons in {}",
                    installed.binary.display(),
                    install::KERNEL_NAME,
                    install::DISPLAY_NAME,
                    installed.kernelspec.display(),
                    installed.toolchain.display(),
                    installed.lessons.display()
                );
                return Ok(());
            }
            let location = match (args.sys_prefix, args.prefix) {
                (true, _) => install::Location::SysPrefix,
                (_, Some(dir)) => install::Location::Prefix(dir),
                _ => install::Location::User,
            };
            let binary = std::env::current_exe()
                .context("finding this binary's path")?
                .canonicalize()?;
            let dir = install::install(&location, &binary)?;
            println!(
                "Installed kernelspec {} ({}) in {}",
                install::KERNEL_NAME,
                install::DISPLAY_NAME,
                dir.display()
            );
            if !no_prebuild {
                engine::prebuild_in_subprocess(false, true)?;
            }
            Ok(())
        }
        Command::Prebuild { show_dir: true, .. } => {
            println!("{}", engine::template_location()?.display());
            Ok(())
        }
        Command::Prebuild { if_missing, .. } => prebuild(if_missing),
        Command::Lab {
            port,
            no_browser,
            notebooks,
            jupyter_args,
        } => lab::run(port, !no_browser, notebooks, &jupyter_args),
        Command::Run {
            notebook: path,
            output,
            no_timing,
            trace,
        } => {
            let (executed, outcome) = in_work_dir(|work_dir| {
                let ctrl_c = notebook::CtrlC::install(work_dir.map(Path::to_owned))?;
                notebook::run(&path, !no_timing, &ctrl_c)
            })?;
            if let Some(output) = output {
                notebook::write(&executed, &output)?;
                eprintln!("tandem: executed notebook written to {}", output.display());
            }
            if let Some(trace) = trace {
                let cells: Vec<_> = (outcome.traces.iter())
                    .map(|(name, cell)| (name.clone(), cell))
                    .collect();
                std::fs::write(&trace, presentation::chrome_trace(&cells))
                    .with_context(|| format!("writing {}", trace.display()))?;
                let cells = match cells.len() {
                    1 => "1 cell".to_owned(),
                    n => format!("{n} cells"),
                };
                eprintln!(
                    "tandem: the event loop of {cells} written to {} (open it in https://ui.perfetto.dev)",
                    trace.display()
                );
            }
            let status = outcome.conclude(&path);
            if status != 0 {
                std::process::exit(status);
            }
            Ok(())
        }
        Command::Kernel {
            connection_file,
            standby: as_standby,
        } => {
            // Taken before this process sets EVCXR_TMPDIR for its own engine.
            let use_standby = standby::enabled();
            let identity = standby::Identity::of_this_process();
            match (as_standby, connection_file) {
                (false, Some(file)) => kernel(&file, use_standby.then_some(identity)),
                (true, _) => {
                    standby::detach()?;
                    let dir = engine::standby_dir()?;
                    let Some(claim) = standby::Claim::take(&dir)? else {
                        log::info!("another standby kernel is alive; nothing to do");
                        return Ok(());
                    };
                    claim.name_holder()?;
                    in_work_dir(|_| standby::run(identity, claim))
                }
                (false, None) => anyhow::bail!("tandem kernel needs --connection-file"),
            }
        }
    }
}

/// The kernel for `connection_file`: handed to a standby when one is alive, its engine up
/// or starting (this process then stands in for it), else run here.
fn kernel(connection_file: &std::path::Path, standby: Option<standby::Identity>) -> Result<()> {
    if let Some(identity) = &standby {
        if let Some(adopted) = standby::hand_over(identity, connection_file) {
            return standby::stand_in(adopted, start_next_standby);
        }
    }
    let info = wire::ConnectionInfo::from_file(connection_file)?;
    info.refuse_empty_key()?;
    in_work_dir(|_| serve_here(&info, standby))
}

/// Serves `info` as a kernel whose engine starts in this process.
fn serve_here(info: &wire::ConnectionInfo, standby: Option<standby::Identity>) -> Result<()> {
    let interrupter = Arc::new(engine::Interrupter::default());
    let attached = interrupter.clone();
    handlers::serve(info, server::Parent::Spawner, "", interrupter, |_| {
        // Once this engine is up, the next kernel's is started, at low priority.
        engine::Starting::spawn_then(attached, move || {
            if standby.is_some() {
                start_next_standby();
            }
        })
    })
}

/// A standby for the next kernel, started in the background (low priority) if none is
/// alive.
fn start_next_standby() {
    if let Err(error) = standby::spawn(None, &[]) {
        log::warn!("could not start a standby kernel for the next notebook: {error:#}");
    }
}

/// Starts an engine in the template directory and stops it: what it compiled stays there
/// for every new kernel to copy.
fn prebuild(if_missing: bool) -> Result<()> {
    let Some(build) = engine::TemplateBuild::begin(if_missing)? else {
        return Ok(());
    };
    println!(
        "tandem: compiling tokio, futures and the helpers into {} (the first time takes a \
         minute or two)",
        build.dir().display()
    );
    // SAFETY (both): no other thread exists yet (`prebuild` runs straight from `main`);
    // evcxr reads the variable to know where to build.
    unsafe { engine::drop_stray_preload_from_library_path() };
    unsafe { std::env::set_var("EVCXR_TMPDIR", engine::build_dir_in(build.dir())) };
    let started = std::time::Instant::now();
    let interrupter = std::sync::Arc::new(engine::Interrupter::default());
    let status = engine::StartStatus::default();
    let engine = engine::Engine::start(interrupter, engine::Startup::InPlace, &status)?;
    drop(engine);
    build.finish()?;
    println!(
        "tandem: preloaded crates ready ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// evcxr compiles cells in a scratch directory, seeded from the prebuilt template: a fresh
/// private one of this kernel's (see `private_dirs`), removed at shutdown even though the
/// engine thread is not joined. When the user chose a directory with EVCXR_TMPDIR, tandem
/// works inside it and leaves it in place, provided no other user can write it or any
/// folder above it. Must run before any thread starts (it sets a variable).
fn engine_work_dir() -> Result<Option<private_dirs::KernelDir>> {
    let (root, owned) = match std::env::var_os("EVCXR_TMPDIR") {
        Some(chosen) => {
            let chosen = PathBuf::from(chosen);
            std::fs::create_dir_all(&chosen)
                .with_context(|| format!("creating {}", chosen.display()))?;
            private_dirs::check_no_one_else_can_write(&chosen).with_context(|| {
                format!(
                    "EVCXR_TMPDIR={} is not safe to build in: other users could put a cargo \
                     configuration there",
                    chosen.display()
                )
            })?;
            // The folder checked, not a link that could be pointed elsewhere later.
            let checked = chosen
                .canonicalize()
                .with_context(|| format!("resolving {}", chosen.display()))?;
            (checked, None)
        }
        None => {
            let dir = private_dirs::KernelDir::create()?;
            (dir.path().to_owned(), Some(dir))
        }
    };
    // SAFETY: see this function's own rule, above: before any other thread.
    unsafe { engine::drop_stray_preload_from_library_path() };
    let build_dir = engine::build_dir_in(&root);
    std::fs::create_dir_all(&build_dir)
        .with_context(|| format!("creating {}", build_dir.display()))?;
    log::debug!("compiling cells in {}", build_dir.display());
    // SAFETY: called from main before any other thread exists.
    unsafe { std::env::set_var("EVCXR_TMPDIR", &build_dir) };
    Ok(owned)
}

/// Runs `work` with the engine's scratch directory made (see [`engine_work_dir`]; `work`
/// is given it when tandem owns it), then removes it, whatever `work` returned. Kernels
/// killed before could not remove theirs: a thread tidies those meanwhile.
fn in_work_dir<T>(work: impl FnOnce(Option<&Path>) -> Result<T>) -> Result<T> {
    let work_dir = engine_work_dir()?;
    remove_dead_kernels_dirs_later(&work_dir);
    let done = work(work_dir.as_ref().map(|dir| dir.path()));
    if let Some(dir) = work_dir {
        dir.remove();
    }
    done
}

/// Kernels that were killed (SIGKILL leaves no chance to clean up) left their scratch
/// folders behind: a thread removes those, when this kernel has one of its own there.
/// The thread blocks every signal: Ctrl-C and SIGTERM are for the threads that handle
/// them (`tandem run` blocks SIGINT in its main thread only after this thread exists).
fn remove_dead_kernels_dirs_later(work_dir: &Option<private_dirs::KernelDir>) {
    if work_dir.is_none() {
        return;
    }
    // SAFETY: sigfillset fills a sigset_t we own; pthread_sigmask changes only this
    // thread's mask, which the new thread inherits, and it is restored right after.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut before);
        let _ = std::thread::Builder::new().name("tidy".into()).spawn(|| {
            private_dirs::remove_dead_kernels_dirs(server::process_ended);
        });
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
    }
}
