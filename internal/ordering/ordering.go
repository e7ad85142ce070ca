// Package ordering places orders: it owns the Idempotency-Key protocol, the
// duplicate check's error shape, the payment call and its recovery, and the
// guest's access tokens. Storage is ladle.Store; money is ladle.PaymentProvider.
package ordering
