package worker

// WatchUrgentFor is WatchUrgent with expectations of the given length.
var WatchUrgentFor = watchUrgent
