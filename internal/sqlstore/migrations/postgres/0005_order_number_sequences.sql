-- 0005_order_number_sequences: order numbers come from one sequence per
-- restaurant (order_number_<id>, in the restaurant's schema) instead of
-- restaurants.next_order_number, a row every order of the restaurant
-- updated and held locked until commit (a lock queue, and bloat). nextval
-- locks nothing; a rolled-back placement leaves a gap.
CREATE FUNCTION ladle_order_number_sequence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I.%I START %s', TG_TABLE_SCHEMA,
        'order_number_' || NEW.id, NEW.next_order_number);
    RETURN NULL;
END
$$;
CREATE TRIGGER restaurants_order_number AFTER INSERT ON restaurants
    FOR EACH ROW EXECUTE FUNCTION ladle_order_number_sequence();
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT id, next_order_number FROM restaurants LOOP
        EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I.%I START %s', current_schema(),
            'order_number_' || r.id, r.next_order_number);
    END LOOP;
END
$$;
