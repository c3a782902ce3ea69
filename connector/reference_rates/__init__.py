"""Reference rates that stay current: the central banks' own figures for statutory interest.

- `sources`: the Bank of England's and the ECB's data services, and their answers parsed strictly;
- `fetch`: one GET per source (requests with a timeout, tenacity retries for what may pass);
- `stored`: the `reference_rates` table (each successful fetch replaces its source's rows) and the rate
  table the interest rules get, merged over the shipped reference_rates.yaml;
- `refresh`: fetch and store, then check every tenant's statutory interest is covered (health issue
  `reference_rate_stale` when not). `ccm rates --refresh` and `ccm serve` (daily) run it.
"""
