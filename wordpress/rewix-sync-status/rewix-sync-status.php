<?php
/**
 * Plugin Name:          Rewix Sync Status
 * Description:          Shows, in the WooCommerce orders list and on each order's page, where every order stands with the supplier: reserved, short, sent and the supplier's status, or a problem to look at. It reads the two order meta keys that rewix-sync writes and stores nothing itself.
 * Version:              1.0.0
 * Requires at least:    6.5
 * Requires PHP:         7.4
 * Requires Plugins:     woocommerce
 * Author:               rewix-sync
 * License:              GPL-2.0-or-later
 * License URI:          https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:          rewix-sync-status
 * WC requires at least: 9.2
 * WC tested up to:      9.2
 *
 * @package Rewix_Sync_Status
 */

defined( 'ABSPATH' ) || exit;

require_once __DIR__ . '/includes/class-rewix-sync-status.php';

define( 'REWIX_SYNC_STATUS_VERSION', '1.0.0' );

/*
 * The plugin only reads order meta through WC_Order, which works whichever
 * storage the shop uses, so it is compatible with HPOS (custom order tables).
 * WooCommerce asks for the declaration during before_woocommerce_init and
 * refuses to switch HPOS on while an active plugin has not made it.
 */
add_action(
	'before_woocommerce_init',
	function () {
		if ( class_exists( \Automattic\WooCommerce\Utilities\FeaturesUtil::class ) ) {
			\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'custom_order_tables', __FILE__, true );
		}
	}
);

( new Rewix_Sync_Status( plugins_url( 'assets/admin.css', __FILE__ ), REWIX_SYNC_STATUS_VERSION ) )->register();
