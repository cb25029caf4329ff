//! `lock_cancel_wal`: lock cancellation (see `lock_cancel`) on the `-wal` file, which holds no
//! lock.

use crate::fault::lock_cancel::LockCancel;
use crate::fault::misuse::LockTarget;

pub const FAULT: LockCancel = LockCancel { target: LockTarget::Wal };
