// The printable documents' 打印 button: WeCom's and DingTalk's in-app browsers have no print
// menu. Our own script (the page's CSP allows no other).
document.getElementById("print").addEventListener("click", function () {
  window.print();
});
