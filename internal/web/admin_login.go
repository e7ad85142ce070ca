package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
)

type loginPage struct {
	page
	Email string
	Next  string
	Error string
}

// handleLogin shows the staff sign-in form (or skips it when signed in).
func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, err := s.Auth.User(r); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login.html", loginPage{page: page{Title: "Staff sign in"}, Next: next})
}

// handleLoginPost checks the credentials, starts a session and goes on to
// the page the user wanted. Failures re-render the form: 401 for wrong
// credentials (the same message whether or not the email exists), 429 with
// Retry-After when the IP or the email is rate limited.
func (s *server) handleLoginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	email, password := r.PostFormValue("email"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	u, err := s.Auth.AuthenticateRequest(r, email, password)
	if err != nil {
		data := loginPage{page: page{Title: "Staff sign in"}, Email: email, Next: next}
		var e *ladle.Error
		errors.As(err, &e)
		switch ladle.ErrorCode(err) {
		case ladle.CodeRateLimited:
			if secs, ok := e.Extra["retry_after"].(int); ok {
				w.Header().Set("Retry-After", strconv.Itoa(secs))
			}
			data.Error = sentence(e.Message) + "."
			s.render(w, r, http.StatusTooManyRequests, "login.html", data)
		case auth.CodeInvalidCredentials:
			data.Error = "Email or password is incorrect."
			s.render(w, r, http.StatusUnauthorized, "login.html", data)
		default:
			s.fail(w, r, err)
		}
		return
	}
	if err := s.Auth.StartSession(w, r, u.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	// This browser is now a known device of u: a lockout of u's email by
	// someone else does not apply to it (internal/auth/device.go).
	s.Auth.RememberDevice(w, r, u.ID, u.Email)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleLogout ends the session.
func (s *server) handleLogout(w http.ResponseWriter, r *http.Request) {
	// The session's live streams in this process end now; those in other
	// processes at their next heartbeat (handleBoardLive).
	if key := sessionKey(r); key != "" {
		s.sessions.End(key)
	}
	if err := s.Auth.EndSession(w, r); err != nil {
		s.Logger.Warn("web: logout", "err", err)
	}
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}
