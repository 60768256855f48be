"""Lieutenants and VMNodes as the apiserver has them, kept in memory by list + watch.

The dashboard answers every poll of every open tab from here, so what a page costs the
apiserver is one watch per kind, whatever the number of tabs or the poll rate; listing
every lieutenant (histories included) each second grew with the fleet (see
bench/dashboard.py). A broken stream is re-listed with backoff (kube/watch.py), and while
it is broken the error is what the page is told, not silently stale data.
"""

from __future__ import annotations

from reef_operator.cli.plugin.cluster import Cluster, Obj, PluginError
from reef_operator.kube.watch import Collection, CustomObjects, ListWatch

PLURALS = ("lieutenants", "vmnodes")
WATCH_SECONDS = 60          # the server ends each watch after this; it is then resumed
RETRY_SECONDS = (0.5, 5.0)  # backoff after a failed list or watch: first, most


class Mirror:
    def __init__(self, cluster: Cluster, all_namespaces: bool) -> None:
        self.cluster, self.all_namespaces = cluster, all_namespaces
        namespace = None if all_namespaces else cluster.namespace
        self.collections = {p: Collection() for p in PLURALS}
        self._followers = [
            ListWatch(CustomObjects(cluster.custom, plural, namespace,
                                    watch_seconds=WATCH_SECONDS,
                                    request_timeout=cluster.read_timeout),
                      self.collections[plural], retry=RETRY_SECONDS, name=f"mirror-{plural}")
            for plural in PLURALS]

    def start(self) -> None:
        for follower in self._followers:
            follower.start()

    def stop(self) -> None:
        for follower in self._followers:
            follower.stop()

    def items(self, plural: str, wait: float) -> list[Obj]:
        """The objects, sorted as `kubectl get` sorts them; PluginError when the last list
        or watch failed (or nothing was listed within `wait` seconds)."""
        collection = self.collections[plural]
        collection.answered.wait(wait)
        with collection.changed:
            failure = collection.failure
            if failure is not None:
                with self.cluster.errors(f"cannot {failure.during} {plural}"):
                    raise failure.error.with_traceback(None)
            if not collection.answered.is_set():
                raise PluginError(f"no answer from the cluster at {self.cluster.server} "
                                  f"within {wait:g}s")
            return collection.objects()
