window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var el = document.getElementById('img-check');
  el.setAttribute('data-loaded', String(ok));
  el.setAttribute('data-total', String(imgs.length));
  el.textContent = ok + '/' + imgs.length + ' images rendered';
});
