"""The development kit of reef-operator: what runs it without a cluster or a Vers account.

A real local control plane (`controlplane`, `reef-operator dev`), the Vers simulator
(`versim`, `reef-versim`), a scripted model server (`scripted_model`), the operator as a
child process (`operator_process`), the chart-to-manifests renderer (`helm`) and the demo
(`demo`). It imports the operator; the operator never imports it.
"""
