-- An agent's timeline of an account (AGT-1) includes the account's
-- support-assisted conversions (CNV-4); their sagas live on streams of
-- their own, found by the account id their start records.
CREATE INDEX events_conversion_account_idx ON events ((data->>'account_id'))
    WHERE event_type = 'conversion.started';
