//! The power-loss fault: the crash-image builder (`builder`, pure) and the images of a trial
//! built from its trace and checked (`images`).
pub mod builder;
pub mod images;
