"""What is generated from the API definitions and the settings table: CRDs, RBAC, the
chart's generated template, the Argo CD health patch, and the reference pages in docs/.

It sits above the rest of the operator (it reads the admission rules, the webhook's
configuration and the shipped BootProfiles), and nothing in the operator imports it.
`python -m reef_operator.render [--check]` writes the files or checks them for drift.
"""
