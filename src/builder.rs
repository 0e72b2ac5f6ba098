//! The guest builder: the four layers, the payload and the choices that
//! decide how a guest starts, collected before [`spawn`](GuestBuilder::spawn).

use crate::command::Command;
use crate::context::Context;
use crate::error::Error;
use crate::fs::Filesystem;
use crate::guest::Guest;
use crate::net::Network;
use crate::resources::Resources;
use crate::spawn::GuestSpec;
use crate::status::Init;

/// Describes a guest; [`spawn`](GuestBuilder::spawn) starts it.
///
/// Created by [`Guest::builder`]. Every setter only records a value; all
/// checks happen in `spawn`, which can be called more than once.
///
/// ```no_run
/// use vguest::{Command, Context, Guest};
///
/// let mut guest = Guest::builder("web1")
///     .context(Context::new().hostname("web1"))
///     .command(Command::new("/bin/sh").args(["-c", "hostname"]))
///     .spawn()?;
/// assert!(guest.wait()?.success());
/// # Ok::<(), vguest::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GuestBuilder {
    pub(crate) name: String,
    pub(crate) context: Context,
    pub(crate) command: Command,
    pub(crate) filesystem: Option<Filesystem>,
    pub(crate) init: Init,
    pub(crate) kill_on_drop: bool,
    pub(crate) resources: Option<Resources>,
    pub(crate) network: Option<Network>,
}

impl GuestBuilder {
    /// A guest called `name` with every default: see [`Guest::builder`].
    pub(crate) fn new(name: String) -> Self {
        GuestBuilder {
            name,
            context: Context::new(),
            command: Command::new("/bin/sh"),
            filesystem: None,
            init: Init::Builtin,
            kill_on_drop: true,
            resources: None,
            network: None,
        }
    }

    /// Sets the context layer (namespaces, ids, capabilities, limits).
    ///
    /// ```
    /// use vguest::{Context, Guest};
    ///
    /// let b = Guest::builder("g").context(Context::new().hostname("g.example"));
    /// ```
    pub fn context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// Gives the guest its own root filesystem and mount table. Without
    /// one, the guest sees the host's files (in its own mount namespace).
    ///
    /// ```
    /// use vguest::{Filesystem, Guest};
    ///
    /// let b = Guest::builder("g").filesystem(Filesystem::server("/srv/guests/g"));
    /// ```
    pub fn filesystem(mut self, filesystem: Filesystem) -> Self {
        self.filesystem = Some(filesystem);
        self
    }

    /// Sets the payload (default: `/bin/sh`).
    ///
    /// ```
    /// use vguest::{Command, Guest};
    ///
    /// let b = Guest::builder("g").command(Command::new("/sbin/init"));
    /// ```
    pub fn command(mut self, command: Command) -> Self {
        self.command = command;
        self
    }

    /// Sets the resource layer: the guest gets its own cgroups with these
    /// limits (without it, the guest gets no cgroups and shares its
    /// creator's).
    ///
    /// ```
    /// use vguest::{Guest, Resources};
    ///
    /// let b = Guest::builder("g").resources(Resources::new().memory_max(128 << 20).pids_max(100));
    /// ```
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = Some(resources);
        self
    }

    /// Sets the network layer: the guest's own stack (the default, with
    /// only `lo`), veth and macvlan links into it, the host's stack, or an
    /// existing namespace. This decides whether the guest has a network
    /// namespace, whatever [`Context::namespaces`] says about
    /// [`Namespaces::NET`](crate::Namespaces::NET).
    ///
    /// ```
    /// use vguest::{Guest, Network, Veth};
    ///
    /// let b = Guest::builder("g").network(Network::new().veth(Veth::new("vgg").address("198.18.0.2/24")));
    /// ```
    pub fn network(mut self, network: Network) -> Self {
        self.network = Some(network);
        self
    }

    /// Chooses what runs as PID 1 (default: [`Init::Builtin`]).
    ///
    /// ```
    /// use vguest::{Command, Guest, Init};
    ///
    /// let b = Guest::builder("full")
    ///     .command(Command::new("/sbin/init"))
    ///     .init(Init::Payload);
    /// ```
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Whether dropping the [`Guest`], or the death of the process that
    /// spawned it, kills it (default: true). Without, the guest keeps
    /// running after either, and its groups are marked detached so that no
    /// sweep removes them ([`resources::sweep`](crate::resources::sweep));
    /// see also [`Guest::detach`].
    ///
    /// ```
    /// use vguest::Guest;
    ///
    /// let b = Guest::builder("g").kill_on_drop(false);
    /// ```
    pub fn kill_on_drop(mut self, kill: bool) -> Self {
        self.kill_on_drop = kill;
        self
    }

    /// Checks every layer, creates the guest and starts its payload.
    ///
    /// Returns once the payload has exec'd; any failure before that is
    /// returned as a typed error after everything made for the guest has
    /// been removed.
    ///
    /// ```no_run
    /// use vguest::{Command, Guest};
    ///
    /// let guest = Guest::builder("g").command(Command::new("/bin/true")).spawn()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn spawn(&self) -> Result<Guest, Error> {
        crate::spawn::spawn(GuestSpec {
            name: &self.name,
            context: &self.context,
            command: &self.command,
            filesystem: self.filesystem.as_ref(),
            init: self.init,
            kill_on_drop: self.kill_on_drop,
            resources: self.resources.as_ref(),
            network: self.network.as_ref(),
        })
    }
}

impl Guest {
    /// Starts describing a guest called `name` (letters, digits, `.`, `_`,
    /// `-`; at most 64 bytes). The name is the default hostname.
    ///
    /// ```
    /// use vguest::Guest;
    ///
    /// let builder = Guest::builder("web1");
    /// ```
    pub fn builder(name: impl Into<String>) -> GuestBuilder {
        GuestBuilder::new(name.into())
    }
}
