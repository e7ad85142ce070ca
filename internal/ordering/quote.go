package ordering

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
)

// Quote prices req for restaurant r exactly as Place would price the order
// (the store's QuoteOrder runs CreateOrder's own steps), without a key and
// without writing anything. Outcomes: the quote, or the errors Place would
// return for the same body before any payment: validation_failed,
// item_unavailable, coupon_invalid, coupon_exhausted, restaurant_closed,
// slot_full, unavailable. The contact and the payment may be left out.
func (s *Service) Quote(ctx context.Context, r *ladle.Restaurant, req *ladle.OrderRequest) (*ladle.Quote, error) {
	now := s.now()
	req.Normalize()
	if fields := req.ValidateQuote(now); len(fields) > 0 {
		return nil, &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation,
			Message: "the order has invalid fields", Fields: fields}
	}
	ctx, cancel := context.WithTimeout(ctx, s.orderTimeout)
	defer cancel()
	return s.store.QuoteOrder(ctx, ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: r.ID, Request: req, Now: now})
}

// Now is the service's clock (tests move it).
func (s *Service) Now() time.Time { return s.now() }
