"""The transactional outbox: the job contract (`contract`), its queries (`repository`) and the
relay that moves due rows to the arq queue (`relay`)."""
