package sqlstore

import (
	"context"
	"fmt"
)

// InstanceID returns the random id this database was given when it was
// migrated (0003_instance). Every process on the same database sees the same
// id; another database has another. Shared caches put it in their keys.
func (s *Store) InstanceID(ctx context.Context) (string, error) {
	var id string
	if err := s.read.QueryRowContext(ctx, `SELECT instance_id FROM instance`).Scan(&id); err != nil {
		return "", fmt.Errorf("sqlstore: instance id: %w", err)
	}
	return id, nil
}
