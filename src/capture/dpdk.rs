//! The safe face of DPDK: the one module of the sensor that calls `dpdk-sys`.
//!
//! It owns the lifetimes DPDK leaves to the caller:
//! - [`Eal`] is the initialised environment; it can exist once per process,
//!   launches closures on worker lcores ([`Eal::launch`], joined or waited for
//!   on drop) and runs `rte_eal_cleanup` when dropped.
//! - [`Mempool`] is a packet-buffer pool, freed when the last port using it is.
//! - [`Port`] is a configured, started ethdev port with its receive queues and
//!   symmetric RSS; it is stopped and closed when it and every [`RxQueue`]
//!   taken from it are gone.
//! - [`MbufBurst`] owns the mbufs of one receive call and frees them in bulk
//!   when refilled, cleared or dropped; its packets are lent out as
//!   [`Mbuf`] views that the borrow checker keeps from outliving the burst.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

/// Packets one receive call can return at most.
pub const MAX_BURST: usize = 256;

/// Headroom DPDK keeps before the packet data of each mbuf.
const MBUF_HEADROOM: u16 = sys::RTE_PKTMBUF_HEADROOM as u16;

/// Toeplitz key length most NICs take (Intel 82599/X710 use 40 or 52 bytes).
const DEFAULT_RSS_KEY_LEN: usize = 40;

static EAL_INITIALISED: AtomicBool = AtomicBool::new(false);

/// A DPDK call that failed.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// `rte_eal_init` refused the arguments or the machine.
    #[error("DPDK EAL initialisation failed ({reason}); EAL arguments: {args}")]
    EalInit {
        /// DPDK's reason.
        reason: String,
        /// The arguments given.
        args: String,
    },
    /// EAL can be initialised once per process.
    #[error("the DPDK EAL is already initialised in this process")]
    AlreadyInitialised,
    /// An EAL argument held a NUL byte.
    #[error("EAL argument {0:?} holds a NUL byte")]
    BadArgument(String),
    /// A packet pool could not be created.
    #[error("creating mempool {name} of {mbufs} mbufs: {reason}")]
    Mempool {
        /// Pool name.
        name: String,
        /// Mbufs asked for.
        mbufs: u32,
        /// DPDK's reason.
        reason: String,
    },
    /// A port call failed.
    #[error("port {port} ({name}): {call} failed: {reason}")]
    Port {
        /// Port id.
        port: u16,
        /// Port name.
        name: String,
        /// The DPDK function.
        call: &'static str,
        /// DPDK's reason.
        reason: String,
    },
    /// A closure could not be launched on an lcore.
    #[error("launching on lcore {lcore}: {reason}")]
    Launch {
        /// The lcore.
        lcore: u32,
        /// DPDK's reason.
        reason: String,
    },
}

fn error_text(code: c_int) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string for any error number.
    unsafe { CStr::from_ptr(sys::rte_strerror(code.abs())) }
        .to_string_lossy()
        .into_owned()
}

fn last_error() -> String {
    // SAFETY: reads the calling thread's rte_errno.
    error_text(unsafe { sys::shim_errno() })
}

/// The initialised DPDK environment abstraction layer.
#[derive(Debug)]
pub struct Eal {
    _args: Vec<CString>,
    // EAL state belongs to the thread that initialised it (the main lcore).
    _main_thread: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises EAL with `args` (without a program name).
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Self, DpdkError> {
        if EAL_INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialised);
        }
        let mut owned = vec![CString::new("mirador").expect("no NUL in a literal")];
        for arg in args {
            let arg = arg.as_ref();
            owned.push(CString::new(arg).map_err(|_| DpdkError::BadArgument(arg.to_owned()))?);
        }
        let mut argv: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr().cast_mut()).collect();
        // SAFETY: argv points at NUL-terminated strings that `owned` keeps
        // alive for the life of the Eal; EAL may permute the pointer array.
        let rc = unsafe { sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if rc < 0 {
            let joined: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
            return Err(DpdkError::EalInit {
                reason: last_error(),
                args: joined.join(" "),
            });
        }
        Ok(Self {
            _args: owned,
            _main_thread: PhantomData,
        })
    }

    /// The lcore running the caller (control and statistics).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// Every enabled lcore but the main one, in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut lcores = Vec::new();
        // SAFETY: EAL is initialised; -1 (as unsigned) starts the iteration.
        let mut lcore = unsafe { sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while lcore < sys::RTE_MAX_LCORE {
            lcores.push(lcore);
            // SAFETY: as above.
            lcore = unsafe { sys::rte_get_next_lcore(lcore, 1, 0) };
        }
        lcores
    }

    /// Ids of every port EAL probed.
    pub fn port_ids(&self) -> Vec<u16> {
        let mut ports = Vec::new();
        // SAFETY: EAL is initialised.
        let mut port = unsafe { sys::rte_eth_find_next(0) };
        while u32::from(port) < sys::RTE_MAX_ETHPORTS {
            ports.push(port);
            // SAFETY: as above.
            port = unsafe { sys::rte_eth_find_next(port + 1) };
        }
        ports
    }

    /// Name of a port (`net_pcap0`, `0000:3b:00.0`).
    pub fn port_name(&self, port: u16) -> Option<String> {
        let mut name = [0 as c_char; 64];
        // SAFETY: the buffer is RTE_ETH_NAME_MAX_LEN (64) bytes.
        let rc = unsafe { sys::rte_eth_dev_get_name_by_port(port, name.as_mut_ptr()) };
        // SAFETY: DPDK wrote a NUL-terminated name on success.
        (rc == 0).then(|| {
            unsafe { CStr::from_ptr(name.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        })
    }

    /// Cycles per second of the time-stamp counter.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: EAL is initialised.
        unsafe { sys::rte_get_tsc_hz() }
    }

    /// The Rx timestamp dynamic field, when a driver registered it.
    pub fn rx_timestamp_field(&self) -> Option<TimestampField> {
        // SAFETY: the names are NUL-terminated constants; a NULL params
        // pointer is allowed.
        let offset = unsafe {
            sys::rte_mbuf_dynfield_lookup(
                sys::RTE_MBUF_DYNFIELD_TIMESTAMP_NAME.as_ptr().cast(),
                std::ptr::null_mut(),
            )
        };
        // SAFETY: as above.
        let bit = unsafe {
            sys::rte_mbuf_dynflag_lookup(
                sys::RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME.as_ptr().cast(),
                std::ptr::null_mut(),
            )
        };
        (offset >= 0 && (0..64).contains(&bit)).then(|| TimestampField {
            offset,
            flag: 1u64 << bit,
        })
    }

    /// Runs `work` on worker lcore `lcore`. The returned handle joins it; a
    /// handle dropped unjoined waits for the lcore.
    pub fn launch<R, F>(&self, lcore: u32, work: F) -> Result<Launched<'_, R>, DpdkError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let mut task = Box::new(Task::<R> {
            work: Some(Box::new(work)),
            result: None,
        });
        let arg = (&mut *task as *mut Task<R>).cast::<c_void>();
        // SAFETY: `task` lives in the returned handle, which waits for the
        // lcore before the box is freed; run_task only touches the task.
        let rc = unsafe { sys::rte_eal_remote_launch(Some(run_task::<R>), arg, lcore) };
        if rc != 0 {
            return Err(DpdkError::Launch {
                lcore,
                reason: error_text(rc),
            });
        }
        Ok(Launched {
            lcore,
            task,
            joined: false,
            _eal: PhantomData,
        })
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: every handle that borrows the Eal (launched work) is gone;
        // ports and pools are owned by the caller, who drops them first.
        unsafe { sys::rte_eal_cleanup() };
    }
}

struct Task<R> {
    work: Option<Box<dyn FnOnce() -> R + Send>>,
    result: Option<std::thread::Result<R>>,
}

unsafe extern "C" fn run_task<R>(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Task the launching handle keeps alive until the
    // lcore is waited for, and nothing else touches it meanwhile.
    let task = unsafe { &mut *arg.cast::<Task<R>>() };
    if let Some(work) = task.work.take() {
        // A panic must not unwind into DPDK's C frames.
        task.result = Some(catch_unwind(AssertUnwindSafe(work)));
    }
    0
}

/// Work running on a worker lcore.
pub struct Launched<'eal, R> {
    lcore: u32,
    task: Box<Task<R>>,
    joined: bool,
    _eal: PhantomData<&'eal Eal>,
}

impl<R> Launched<'_, R> {
    /// The lcore the work runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the work and returns its result (`Err` if it panicked).
    pub fn join(mut self) -> std::thread::Result<R> {
        // SAFETY: the lcore was launched by this handle.
        unsafe { sys::rte_eal_wait_lcore(self.lcore) };
        self.joined = true;
        self.task
            .result
            .take()
            .unwrap_or_else(|| Err(Box::new("the lcore did not run the work")))
    }
}

impl<R> Drop for Launched<'_, R> {
    fn drop(&mut self) {
        if !self.joined {
            // SAFETY: as in join; keeps the task alive until the lcore is done.
            unsafe { sys::rte_eal_wait_lcore(self.lcore) };
        }
    }
}

/// Where drivers put the receive timestamp in an mbuf.
#[derive(Debug, Clone, Copy)]
pub struct TimestampField {
    offset: c_int,
    flag: u64,
}

/// A pool of packet buffers.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<sys::rte_mempool>,
    name: String,
}

// SAFETY: a mempool is safe to use from every lcore (per-lcore caches, lock-
// free ring); the handle only frees it on drop, when no port uses it.
unsafe impl Send for Mempool {}
// SAFETY: as above.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// A pool of `mbufs` packet buffers of `data_room` bytes each (headroom
    /// not counted), with a per-lcore cache of `cache`, on NUMA socket
    /// `socket` (-1: any).
    pub fn new(
        _eal: &Eal,
        name: &str,
        mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Self, DpdkError> {
        let room = data_room.saturating_add(MBUF_HEADROOM);
        let c_name = CString::new(name).map_err(|_| DpdkError::BadArgument(name.to_owned()))?;
        // SAFETY: EAL is initialised; the name is NUL-terminated.
        let raw =
            unsafe { sys::rte_pktmbuf_pool_create(c_name.as_ptr(), mbufs, cache, 0, room, socket) };
        let raw = NonNull::new(raw).ok_or_else(|| DpdkError::Mempool {
            name: name.to_owned(),
            mbufs,
            reason: last_error(),
        })?;
        Ok(Self {
            raw,
            name: name.to_owned(),
        })
    }

    /// Pool name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Mbufs free in the pool now.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive.
        unsafe { sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: no port holds the pool any more (ports keep an Arc to it).
        unsafe { sys::rte_mempool_free(self.raw.as_ptr()) };
    }
}

/// How a port spreads flows over its receive queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rss {
    /// One queue, or a device without RSS: nothing to spread.
    None,
    /// Toeplitz hashing with a symmetric key over these hash types.
    SymmetricToeplitz {
        /// The key programmed.
        key: Vec<u8>,
        /// `RTE_ETH_RSS_*` bits enabled.
        hash_types: u64,
    },
}

/// How to set up a port.
#[derive(Debug, Clone, Copy)]
pub struct PortSetup {
    /// Receive queues wanted; clamped to what the device offers.
    pub rx_queues: u16,
    /// Descriptors per receive queue.
    pub ring_size: u16,
}

/// What a port is.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// Port id.
    pub id: u16,
    /// DPDK name.
    pub name: String,
    /// Poll-mode driver name (`net_pcap`, `net_ice` ...).
    pub driver: String,
    /// Receive queues the device offers at most.
    pub max_rx_queues: u16,
}

/// Receive counters of a port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets the device dropped because no descriptor was free.
    pub imissed: u64,
    /// Erroneous packets received.
    pub ierrors: u64,
    /// Receive failures for want of an mbuf.
    pub rx_nombuf: u64,
    /// Packets and bytes per queue (the first 16 queues).
    pub queues: Vec<(u64, u64)>,
}

#[derive(Debug)]
struct PortState {
    id: u16,
    name: String,
    _pool: Arc<Mempool>,
}

impl Drop for PortState {
    fn drop(&mut self) {
        // SAFETY: the last handle (Port or RxQueue) is gone, so nothing polls
        // the port any more.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            sys::rte_eth_dev_close(self.id);
        }
    }
}

/// A configured and started port.
#[derive(Debug)]
pub struct Port {
    state: Arc<PortState>,
    info: PortInfo,
    rss: Rss,
    rx_queues: u16,
}

impl Port {
    /// What the device says about itself.
    pub fn info(eal: &Eal, id: u16) -> Result<PortInfo, DpdkError> {
        let name = eal.port_name(id).unwrap_or_else(|| format!("port{id}"));
        let raw = raw_info(id, &name)?;
        let driver = if raw.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-NULL driver name is a static NUL-terminated string.
            unsafe { CStr::from_ptr(raw.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(PortInfo {
            id,
            name,
            driver,
            max_rx_queues: raw.max_rx_queues,
        })
    }

    /// Configures `setup.rx_queues` receive queues (clamped to the device's
    /// maximum) with a symmetric RSS key, fills them from `pool`, starts the
    /// port and turns on promiscuous mode where the driver has it.
    pub fn start(
        _eal: &Eal,
        info: PortInfo,
        setup: PortSetup,
        pool: Arc<Mempool>,
    ) -> Result<Self, DpdkError> {
        let id = info.id;
        let fail = |call: &'static str, rc: c_int| DpdkError::Port {
            port: id,
            name: info.name.clone(),
            call,
            reason: error_text(rc),
        };
        let raw = raw_info(id, &info.name)?;
        let rx_queues = setup.rx_queues.clamp(1, raw.max_rx_queues.max(1));
        let mut conf = sys::rte_eth_conf::default();
        let mut key = symmetric_rss_key(match raw.hash_key_size {
            0 => DEFAULT_RSS_KEY_LEN,
            n => usize::from(n),
        });
        // SAFETY: reads a constant the shim exports.
        let wanted = unsafe { sys::shim_rss_hf_ip_tcp_udp };
        let hash_types = wanted & raw.flow_type_rss_offloads;
        let rss = if rx_queues > 1 && hash_types != 0 {
            conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
            conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
            conf.rx_adv_conf.rss_conf.rss_hf = hash_types;
            Rss::SymmetricToeplitz {
                key: key.clone(),
                hash_types,
            }
        } else {
            Rss::None
        };
        // SAFETY: `conf` and the key it points at outlive the call, which
        // copies them.
        let rc = unsafe { sys::rte_eth_dev_configure(id, rx_queues, 0, &conf) };
        if rc != 0 {
            return Err(fail("rte_eth_dev_configure", rc));
        }
        // SAFETY: the port is configured.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { 0 } else { socket as c_uint };
        for queue in 0..rx_queues {
            // SAFETY: the pool outlives the port (PortState keeps it); a NULL
            // rxconf takes the driver's defaults.
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    id,
                    queue,
                    setup.ring_size,
                    socket,
                    std::ptr::null(),
                    pool.raw.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(fail("rte_eth_rx_queue_setup", rc));
            }
        }
        // SAFETY: the port is configured with its queues.
        let rc = unsafe { sys::rte_eth_dev_start(id) };
        if rc != 0 {
            return Err(fail("rte_eth_dev_start", rc));
        }
        // A mirror port sees other hosts' frames; drivers without the mode
        // (net_pcap reading files) refuse it harmlessly.
        // SAFETY: the port is started.
        unsafe { sys::rte_eth_promiscuous_enable(id) };
        Ok(Self {
            state: Arc::new(PortState {
                id,
                name: info.name.clone(),
                _pool: pool,
            }),
            info,
            rss,
            rx_queues,
        })
    }

    /// What the port is.
    pub fn info_ref(&self) -> &PortInfo {
        &self.info
    }

    /// The RSS set-up in force.
    pub fn rss(&self) -> &Rss {
        &self.rss
    }

    /// Receive queues configured.
    pub fn rx_queue_count(&self) -> u16 {
        self.rx_queues
    }

    /// Handles to every receive queue, to hand to workers.
    pub fn rx_queues(&self) -> Vec<RxQueue> {
        (0..self.rx_queues)
            .map(|queue| RxQueue {
                port: Arc::clone(&self.state),
                queue,
            })
            .collect()
    }

    /// Receive counters now.
    pub fn stats(&self) -> PortStats {
        let mut raw = sys::rte_eth_stats::default();
        // SAFETY: the port is started; `raw` is a valid out-pointer.
        let rc = unsafe { sys::rte_eth_stats_get(self.state.id, &mut raw) };
        if rc != 0 {
            return PortStats::default();
        }
        let shown = usize::from(self.rx_queues).min(raw.q_ipackets.len());
        PortStats {
            rx_packets: raw.ipackets,
            rx_bytes: raw.ibytes,
            imissed: raw.imissed,
            ierrors: raw.ierrors,
            rx_nombuf: raw.rx_nombuf,
            queues: (0..shown)
                .map(|q| (raw.q_ipackets[q], raw.q_ibytes[q]))
                .collect(),
        }
    }
}

fn raw_info(id: u16, name: &str) -> Result<sys::rte_eth_dev_info, DpdkError> {
    let mut raw = sys::rte_eth_dev_info::default();
    // SAFETY: `raw` is a valid out-pointer.
    let rc = unsafe { sys::rte_eth_dev_info_get(id, &mut raw) };
    if rc != 0 {
        return Err(DpdkError::Port {
            port: id,
            name: name.to_owned(),
            call: "rte_eth_dev_info_get",
            reason: error_text(rc),
        });
    }
    Ok(raw)
}

/// A Toeplitz key of `len` bytes that hashes both directions of a flow alike:
/// the 16-bit pattern 0x6d5a repeated, so that swapping source and
/// destination (address or port) shifts the key by a multiple of its period.
pub fn symmetric_rss_key(len: usize) -> Vec<u8> {
    [0x6d, 0x5a].into_iter().cycle().take(len).collect()
}

/// The Toeplitz hash DPDK computes in software (`rte_softrss`) of `tuple`
/// (32-bit words in host order) under `key`; used to check keys.
pub fn toeplitz_hash(tuple: &[u32], key: &[u8]) -> u32 {
    let needed = tuple.len() * 4 + 4;
    assert!(key.len() >= needed, "a {needed}-byte key is needed");
    // SAFETY: rte_softrss reads `len` words of the tuple and len*4+4 bytes of
    // the key, both checked above; it needs no EAL.
    unsafe { sys::shim_softrss(tuple.as_ptr(), tuple.len() as u32, key.as_ptr()) }
}

/// One receive queue of a started port; owned by the worker that polls it.
#[derive(Debug)]
pub struct RxQueue {
    port: Arc<PortState>,
    queue: u16,
}

impl RxQueue {
    /// Port id.
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    /// Port name.
    pub fn port_name(&self) -> &str {
        &self.port.name
    }

    /// Queue index on its port.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Frees what `burst` held and refills it with up to `max` packets
    /// (at most [`MAX_BURST`]); returns how many arrived.
    pub fn rx_burst(&mut self, burst: &mut MbufBurst, max: u16) -> usize {
        burst.clear();
        let max = usize::from(max).min(MAX_BURST) as u16;
        // SAFETY: the queue is set up on a started port (kept alive by the
        // Arc); one RxQueue handle exists per queue and it is polled only
        // through `&mut self`; the array has room for `max` pointers.
        let n =
            unsafe { sys::shim_rx_burst(self.port.id, self.queue, burst.mbufs.as_mut_ptr(), max) };
        burst.len = usize::from(n);
        burst.len
    }
}

/// The mbufs of one receive call, freed together.
pub struct MbufBurst {
    mbufs: [*mut sys::rte_mbuf; MAX_BURST],
    len: usize,
}

// SAFETY: the burst owns its mbufs; DPDK mbufs may be freed on any lcore.
unsafe impl Send for MbufBurst {}

impl Default for MbufBurst {
    fn default() -> Self {
        Self {
            mbufs: [std::ptr::null_mut(); MAX_BURST],
            len: 0,
        }
    }
}

impl std::fmt::Debug for MbufBurst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbufBurst").field("len", &self.len).finish()
    }
}

impl MbufBurst {
    /// Packets held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frees every mbuf held.
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: the first `len` pointers are mbufs this burst owns;
            // they are forgotten right after.
            unsafe { sys::shim_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), self.len as c_uint) };
            self.len = 0;
        }
    }

    /// The `index`-th packet.
    pub fn get(&self, index: usize) -> Option<Mbuf<'_>> {
        self.mbufs[..self.len].get(index).map(|&raw| Mbuf {
            // SAFETY: rx_burst only stores non-NULL mbufs in the first `len` slots.
            raw: unsafe { NonNull::new_unchecked(raw) },
            _burst: PhantomData,
        })
    }

    /// The packets, in arrival order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Mbuf<'_>> + '_ {
        self.mbufs[..self.len].iter().map(|&raw| Mbuf {
            // SAFETY: rx_burst only stores non-NULL mbufs in the first `len` slots.
            raw: unsafe { NonNull::new_unchecked(raw) },
            _burst: PhantomData,
        })
    }
}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A received packet, borrowed from its [`MbufBurst`].
#[derive(Clone, Copy)]
pub struct Mbuf<'burst> {
    raw: NonNull<sys::rte_mbuf>,
    _burst: PhantomData<&'burst MbufBurst>,
}

impl<'burst> Mbuf<'burst> {
    /// Bytes of the first segment (the whole packet unless it is chained).
    pub fn data(&self) -> &'burst [u8] {
        let mut len = 0u16;
        // SAFETY: the mbuf is alive while the burst is borrowed; the shim
        // returns its data pointer and the first segment's length.
        let ptr = unsafe { sys::shim_pktmbuf_data(self.raw.as_ptr(), &mut len) };
        // SAFETY: `len` bytes at `ptr` belong to the mbuf.
        unsafe { std::slice::from_raw_parts(ptr, usize::from(len)) }
    }

    /// Asks the CPU to start loading the packet's first bytes.
    pub fn prefetch(&self) {
        let mut len = 0u16;
        // SAFETY: the mbuf is alive; prefetching any address is harmless.
        unsafe {
            let data = sys::shim_pktmbuf_data(self.raw.as_ptr(), &mut len);
            sys::shim_prefetch0(data.cast());
        }
    }

    /// Length of the packet over all its segments.
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: the mbuf is alive while the burst is borrowed.
        unsafe { sys::shim_pktmbuf_pkt_len(self.raw.as_ptr()) }
    }

    /// The whole packet: the first segment when it holds it all, else a copy
    /// of the chain into `scratch` (cut to its size).
    pub fn contiguous<'a>(&self, scratch: &'a mut [u8]) -> &'a [u8]
    where
        'burst: 'a,
    {
        let first = self.data();
        let total = self.pkt_len() as usize;
        if first.len() >= total {
            return first;
        }
        let len = total.min(scratch.len());
        // SAFETY: `scratch` has room for `len` bytes; the shim copies the
        // chain into it (or returns the data pointer when contiguous).
        let ptr = unsafe {
            sys::shim_pktmbuf_read(self.raw.as_ptr(), 0, len as u32, scratch.as_mut_ptr())
        };
        if ptr.is_null() {
            return first;
        }
        // SAFETY: `len` readable bytes at `ptr` (scratch or the mbuf).
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// The driver's receive timestamp, when it set one.
    pub fn timestamp(&self, field: TimestampField) -> Option<u64> {
        let mut present = 0;
        // SAFETY: the mbuf is alive; the offset was registered with DPDK.
        let value = unsafe {
            sys::shim_mbuf_timestamp(self.raw.as_ptr(), field.offset, field.flag, &mut present)
        };
        (present != 0).then_some(value)
    }
}

/// Reads the time-stamp counter.
pub fn tsc_cycles() -> u64 {
    // SAFETY: reads a CPU register.
    unsafe { sys::shim_tsc_cycles() }
}

/// The `--vdev` device arguments among EAL arguments, by device name
/// (`net_pcap0` -> `rx_pcap=a.pcap,infinite_rx=1`).
pub fn vdev_args<S: AsRef<str>>(eal: &[S]) -> HashMap<String, String> {
    let mut devices = HashMap::new();
    let mut args = eal.iter().map(AsRef::as_ref);
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--vdev") {
            Some(rest) if rest.starts_with('=') => rest[1..].to_owned(),
            Some("") => match args.next() {
                Some(next) => next.to_owned(),
                None => break,
            },
            _ => continue,
        };
        let (name, params) = value.split_once(',').unwrap_or((value.as_str(), ""));
        devices.insert(name.to_owned(), params.to_owned());
    }
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tuple(src: u32, dst: u32, sport: u16, dport: u16) -> [u32; 3] {
        [src, dst, (u32::from(sport) << 16) | u32::from(dport)]
    }

    fn ipv6_tuple(src: [u32; 4], dst: [u32; 4], sport: u16, dport: u16) -> [u32; 9] {
        let mut t = [0u32; 9];
        t[..4].copy_from_slice(&src);
        t[4..8].copy_from_slice(&dst);
        t[8] = (u32::from(sport) << 16) | u32::from(dport);
        t
    }

    /// A little xorshift, so the test needs no dependency and is repeatable.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn symmetric_key_hashes_both_directions_alike_in_dpdk_softrss() {
        let key = symmetric_rss_key(52);
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            let (a, b) = (next(&mut state) as u32, next(&mut state) as u32);
            let (p, q) = (next(&mut state) as u16, next(&mut state) as u16);
            assert_eq!(
                toeplitz_hash(&ipv4_tuple(a, b, p, q), &key),
                toeplitz_hash(&ipv4_tuple(b, a, q, p), &key),
                "{a:x} {b:x} {p} {q}"
            );
            let src = [a, b, p.into(), q.into()];
            let dst = [b ^ 0x5555, a, q.into(), 7];
            assert_eq!(
                toeplitz_hash(&ipv6_tuple(src, dst, p, q), &key),
                toeplitz_hash(&ipv6_tuple(dst, src, q, p), &key)
            );
        }
    }

    #[test]
    fn the_usual_intel_key_is_not_symmetric() {
        // The default key of many drivers (Microsoft's RSS verification key).
        let key: Vec<u8> = [
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ]
        .to_vec();
        // Microsoft's published vector: 66.9.149.187:2794 -> 161.142.100.80:1766.
        let forward = ipv4_tuple(0x4209_95bb, 0xa18e_6450, 2794, 1766);
        assert_eq!(toeplitz_hash(&forward, &key), 0x51cc_c178);
        let reverse = ipv4_tuple(0xa18e_6450, 0x4209_95bb, 1766, 2794);
        assert_ne!(toeplitz_hash(&forward, &key), toeplitz_hash(&reverse, &key));
    }

    #[test]
    fn vdev_arguments_are_found_in_both_spellings() {
        let args = [
            "-l",
            "0-1",
            "--vdev=net_pcap0,rx_pcap=a.pcap,infinite_rx=1",
            "--vdev",
            "net_af_packet0,iface=veth1,qpairs=2",
            "--vdev=net_null0",
        ];
        let devices = vdev_args(&args);
        assert_eq!(devices["net_pcap0"], "rx_pcap=a.pcap,infinite_rx=1");
        assert_eq!(devices["net_af_packet0"], "iface=veth1,qpairs=2");
        assert_eq!(devices["net_null0"], "");
        assert_eq!(devices.len(), 3);
    }
}
