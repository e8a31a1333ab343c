// Loaded between require.js and the widget manager on pages with widgets
// (book/_ext/offline_assets.py).
(function () {
  // 1. The manager finds its own files (icon fonts) through require.js's path for
  //    "@jupyter-widgets/html-manager/dist": point it at the copy served with the
  //    book, next to this file, so nothing is fetched from the page's folder or a CDN.
  var here = document.currentScript.src.replace(/[^/]*$/, "");
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": here + "html-manager" } });

  // 2. The manager typesets widget labels with MathJax 2's MathJax.Hub.Queue; the
  //    book uses MathJax 3. Give it a Hub.Queue that calls MathJax 3 (before MathJax
  //    has started, there is nothing to do: its first pass typesets the whole page).
  function addHub(mj) {
    if (!mj.Hub) {
      mj.Hub = {
        Queue: function (job) {
          var element = job && job[2];
          if (window.MathJax && window.MathJax.typesetPromise) {
            window.MathJax.typesetPromise(element ? [element] : undefined);
          }
        },
      };
    }
  }
  window.MathJax = window.MathJax || {};
  addHub(window.MathJax);
  var startup = (window.MathJax.startup = window.MathJax.startup || {});
  var ready = startup.ready;
  startup.ready = function () {
    if (ready) { ready(); } else { window.MathJax.startup.defaultReady(); }
    addHub(window.MathJax);
  };
})();
