package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/campaign"
)

// ConfirmEmailStore is what the double opt-in confirmation page needs.
type ConfirmEmailStore interface {
	ConfirmConsent(ctx context.Context, restaurantID int64, email string, now time.Time) (ladle.ConfirmOutcome, error)
	RestaurantByID(ctx context.Context, id int64) (*ladle.Restaurant, error)
}

// ConfirmEmail serves /confirm-email/{token}, the link of a double opt-in
// confirmation email, as Unsubscribe serves its link:
//
//   - GET only shows a page with a Confirm button: mail scanners and link
//     previews fetch links, and must not confirm anyone's consent.
//   - POST confirms (ConfirmConsent), idempotently: a second POST says it
//     is confirmed and changes nothing.
//
// A token that does not verify, or has expired, is a 400 page and changes
// nothing. Consent withdrawn or unsubscribed since the email was sent is
// not confirmed by an old link: 409.
func ConfirmEmail(store ConfirmEmailStore, signer *campaign.Signer, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenPageHeaders(w)
		if !tokenMethod(w, r) {
			return
		}
		rid, email, err := signer.ParseConfirm(r.PathValue("token"), time.Now())
		if err != nil {
			v := unsubView{Title: "Link not valid", Confirm: true,
				Message: "This confirmation link is not valid. Use the link from the email exactly as it is."}
			if errors.Is(err, campaign.ErrExpiredToken) {
				v.Title, v.Message = "Link expired", "This confirmation link has expired. Tick the box for emails with your next order to get a new one."
			}
			w.WriteHeader(http.StatusBadRequest)
			_ = unsubscribePage.Execute(w, v)
			return
		}
		tokenAction(w, r, log, store, rid, unsubView{Title: "Confirm emails?", Email: email, Confirm: true},
			func(ctx context.Context, v unsubView) (int, unsubView, error) {
				out, err := store.ConfirmConsent(ctx, rid, email, time.Now())
				switch {
				case err != nil:
					return 0, v, err
				case out == ladle.ConfirmNothing:
					return http.StatusConflict, unsubView{Title: "Nothing to confirm", Confirm: true,
						Message: "There is no request for emails to confirm for this address: it was withdrawn or unsubscribed since this link was sent."}, nil
				}
				v.Title, v.Done = "Confirmed", true
				return http.StatusOK, v, nil
			})
	})
}
