//! (being written)
// TEMP STUB
pub fn encode_histogram(_h: &hdrhistogram::Histogram<u64>) -> String {
    todo!()
}
pub fn new_latency_histogram() -> hdrhistogram::Histogram<u64> {
    todo!()
}
