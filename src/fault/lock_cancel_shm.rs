//! `lock_cancel_shm`: lock cancellation (see `lock_cancel`) on the `-shm` file, where WAL keeps
//! its writer and reader locks.

use crate::fault::lock_cancel::LockCancel;
use crate::fault::misuse::LockTarget;

pub const FAULT: LockCancel = LockCancel { target: LockTarget::Shm };
