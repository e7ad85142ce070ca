// Stripe.js on the storefront, loaded only when Ladle runs with
// --stripe-publishable-key: the checkout collects the card in Stripe's card
// element (the card number never touches Ladle) and sends the payment
// method id as card_token; the payment action page finishes 3-D Secure and
// tells Ladle (POST confirm_url), which asks Stripe and places the order.
(function () {
  'use strict';
  if (!window.Stripe) return;

  var mount = document.querySelector('[data-stripe-card]');
  if (mount) {
    var stripe = Stripe(mount.dataset.stripeKey);
    var card = stripe.elements().create('card');
    card.mount(mount);
    var form = mount.closest('form');
    var token = form.elements.card_token;
    var errorEl = document.querySelector('[data-stripe-card-error]');
    var ready = false;
    // Capture phase: runs before the checkout's own submit handler, which
    // then sees the payment method id in card_token.
    form.addEventListener('submit', function (ev) {
      if (ready || form.elements.payment.value !== 'card') {
        ready = false;
        return;
      }
      ev.preventDefault();
      ev.stopImmediatePropagation();
      stripe.createPaymentMethod({ type: 'card', card: card }).then(function (res) {
        if (res.error) {
          if (errorEl) errorEl.textContent = res.error.message;
          return;
        }
        if (errorEl) errorEl.textContent = '';
        token.value = res.paymentMethod.id;
        ready = true;
        form.requestSubmit();
      });
    }, true);
  }

  var act = document.querySelector('[data-payment-action]');
  if (act && act.dataset.clientSecret) {
    var msg = act.querySelector('[data-action-message]');
    var s = Stripe(act.dataset.stripeKey);
    s.handleNextAction({ clientSecret: act.dataset.clientSecret }).then(function () {
      // Whatever Stripe.js says, Ladle asks Stripe itself.
      return fetch(act.dataset.confirmUrl, { method: 'POST', credentials: 'same-origin' });
    }).then(function (resp) {
      if (resp.status === 201) {
        window.location.href = act.dataset.statusUrl + '&placed=1';
      } else if (resp.status === 402) {
        msg.textContent = 'Your card was declined or not confirmed. Nothing was charged; go back to the checkout to try another card.';
      } else {
        msg.textContent = 'We could not confirm your payment yet. Your order page shows it as soon as it is.';
      }
    }).catch(function () {
      msg.textContent = 'We could not reach the server. Your order page shows the payment as soon as it is confirmed.';
    });
  }
})();
