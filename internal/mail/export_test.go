package mail

// NoChunking makes s send with DATA even where the server offers CHUNKING,
// so tests cover both ways of sending.
func NoChunking(s *SMTP) { s.noChunking = true }
