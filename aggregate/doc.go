// Package aggregate is the pure logic of two-phase aggregation, with no
// I/O, no goroutines and the wall clock injected.
//
// The first phase, Segmenter, turns one Kafka partition's gateway records
// into logs in chunks and, at each cut (a commit point), one Partial per
// tenant window the segment touched: that segment's share of the window's
// totals. Ledger says which offset the partition may commit: the last cut
// below every batch not yet accepted.
//
// The second phase, Combiner, keeps the latest Partial per key from every
// partition and segment, drops what a crashed run wrote when a new run
// starts (Reset), folds the segments that can no longer change, and sums a
// tenant window into one Series per tag set: what Datadog gets.
//
// The rules on keys, commits and replays are in docs/design.md
// ("Offsets, segments and replays").
package aggregate
