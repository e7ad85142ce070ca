-- 0055: double opt-in. A restaurant that turns it on records marketing
-- consent given by a guest (the box at checkout) as pending until the
-- guest confirms it from an emailed link; only then is the customer
-- marketing_opt_in (so every audience, which selects on that, leaves
-- pending customers out without a change).
ALTER TABLE restaurants ADD COLUMN double_opt_in BOOLEAN NOT NULL DEFAULT false;
-- When the guest last asked (NULL: nothing pending).
ALTER TABLE customers ADD COLUMN consent_pending_at TIMESTAMPTZ;
-- When the guest confirmed from the link (NULL: never; consent from an
-- import or a checkout without double opt-in is not confirmed by email).
ALTER TABLE customers ADD COLUMN consent_confirmed_at TIMESTAMPTZ;
-- The last confirmation email: when, and the event that sent it (so a
-- redelivery of that event may send it again, and no other event may
-- within a day).
ALTER TABLE customers ADD COLUMN confirm_sent_at TIMESTAMPTZ;
ALTER TABLE customers ADD COLUMN confirm_event_id TEXT NOT NULL DEFAULT '';
