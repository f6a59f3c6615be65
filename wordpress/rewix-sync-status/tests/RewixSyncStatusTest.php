<?php
/**
 * The column, the box and the HPOS declaration, driven through the hooks the
 * plugin registers, with the arguments WooCommerce 9.x and WordPress pass.
 *
 * @package Rewix_Sync_Status
 */

use Automattic\WooCommerce\Utilities\FeaturesUtil;
use PHPUnit\Framework\TestCase;

final class RewixSyncStatusTest extends TestCase {

	/** WooCommerce 9.x's HPOS list columns (ListTable::get_columns). */
	const HPOS_COLUMNS = array( 'cb', 'order_number', 'order_date', 'order_status', 'billing_address', 'shipping_address', 'order_total', 'wc_actions' );

	/** WooCommerce 9.x's legacy list columns (WC_Admin_List_Table_Orders::define_columns). */
	const LEGACY_COLUMNS = array( 'cb', 'order_number', 'order_date', 'order_status', 'billing_address', 'shipping_address', 'order_total', 'wc_actions' );

	const HPOS_SCREEN = 'woocommerce_page_wc-orders';

	protected function setUp(): void {
		rss_reset_stubs();
	}

	private static function columns( array $ids ): array {
		return array_combine( $ids, array_map( 'ucfirst', $ids ) );
	}

	/** The HPOS list's cell for an order with that meta. */
	private static function hpos_cell( array $meta ): string {
		return rss_do_action( 'manage_woocommerce_page_wc-orders_custom_column', 'rewix_sync_status', new WC_Order( 7, $meta ) );
	}

	/** The legacy list's cell: WordPress passes the post id, the order comes from wc_get_order. */
	private static function legacy_cell( array $meta ): string {
		$GLOBALS['rss_orders'][ 8 ] = new WC_Order( 8, $meta );
		return rss_do_action( 'manage_shop_order_posts_custom_column', 'rewix_sync_status', 8 );
	}

	public function test_the_hpos_list_gets_the_column_right_after_the_order_status(): void {
		$columns = apply_filters( 'manage_woocommerce_page_wc-orders_columns', self::columns( self::HPOS_COLUMNS ) );

		$this->assertSame(
			array( 'cb', 'order_number', 'order_date', 'order_status', 'rewix_sync_status', 'billing_address', 'shipping_address', 'order_total', 'wc_actions' ),
			array_keys( $columns )
		);
		$this->assertSame( 'Supplier sync', $columns['rewix_sync_status'] );
		$this->assertSame( 'Order_status', $columns['order_status'] );
	}

	public function test_the_legacy_list_gets_the_column_right_after_the_order_status(): void {
		$columns = apply_filters( 'manage_edit-shop_order_columns', self::columns( self::LEGACY_COLUMNS ) );

		$this->assertSame(
			array( 'cb', 'order_number', 'order_date', 'order_status', 'rewix_sync_status', 'billing_address', 'shipping_address', 'order_total', 'wc_actions' ),
			array_keys( $columns )
		);
	}

	public function test_without_a_status_column_ours_goes_last(): void {
		$columns = apply_filters( 'manage_woocommerce_page_wc-orders_columns', self::columns( array( 'cb', 'order_number', 'order_total' ) ) );

		$this->assertSame( array( 'cb', 'order_number', 'order_total', 'rewix_sync_status' ), array_keys( $columns ) );
	}

	public static function keywords(): array {
		return array(
			'pending'            => array( 'pending', 'rewix-sync-pending', 'Pending' ),
			'reserved'           => array( 'reserved', 'rewix-sync-reserved', 'Reserved' ),
			'short with detail'  => array( 'short: 2 of 3 units of 10042', 'rewix-sync-short', 'Short: 2 of 3 units of 10042' ),
			'held with detail'   => array( 'held: paid before go-live', 'rewix-sync-held', 'Held: paid before go-live' ),
			'waiting'            => array( 'waiting: product 55 not mapped', 'rewix-sync-waiting', 'Waiting: product 55 not mapped' ),
			'sent: Booked'       => array( 'sent: Booked', 'rewix-sync-sent', 'Sent: Booked' ),
			'sent: Confirmed'    => array( 'sent: Confirmed', 'rewix-sync-sent', 'Sent: Confirmed' ),
			'sent: Working on'   => array( 'sent: Working on', 'rewix-sync-sent', 'Sent: Working on' ),
			'sent: Ready'        => array( 'sent: Ready', 'rewix-sync-sent', 'Sent: Ready' ),
			'sent: Dispatched'   => array( 'sent: Dispatched', 'rewix-sync-sent', 'Sent: Dispatched' ),
			'released'           => array( 'released', 'rewix-sync-released', 'Released' ),
			'problem'            => array( 'problem: the supplier refused model 10042', 'rewix-sync-problem', 'Problem: the supplier refused model 10042' ),
			'upper case keyword' => array( 'SENT: Ready', 'rewix-sync-sent', 'Sent: Ready' ),
			'spaces around'      => array( "  reserved \n", 'rewix-sync-reserved', 'Reserved' ),
			'no space after :'   => array( 'problem:refused', 'rewix-sync-problem', 'Problem: refused' ),
			'unknown keyword'    => array( 'frozen: until Monday', 'rewix-sync-unknown', 'frozen: until Monday' ),
			'only a detail'      => array( ': odd', 'rewix-sync-unknown', ': odd' ),
		);
	}

	/** @dataProvider keywords */
	public function test_each_keyword_has_its_class_and_label_in_both_lists( string $meta, string $class, string $text ): void {
		foreach ( array( self::hpos_cell( array( 'rewix_sync_status' => $meta ) ), self::legacy_cell( array( 'rewix_sync_status' => $meta ) ) ) as $cell ) {
			$this->assertStringContainsString( '<mark class="rewix-sync-status ' . $class . '"', $cell );
			$this->assertStringContainsString( '<span>' . $text . '</span></mark>', $cell );
			$this->assertStringNotContainsString( '&mdash;', $cell );
		}
	}

	public function test_hostile_detail_is_escaped_in_the_text_and_the_tooltip(): void {
		$hostile = 'problem: <script>alert(1)</script> " onmouseover="alert(2)';
		$cells   = array(
			self::hpos_cell( array( 'rewix_sync_status' => $hostile ) ),
			self::legacy_cell( array( 'rewix_sync_status' => $hostile ) ),
			self::hpos_cell( array( 'rewix_sync_status' => '<script>alert(3)</script>: x' ) ),
			self::hpos_cell( array( 'rewix_sync_status' => 'sent: Ready', 'rewix_supplier_order' => '<script>alert(4)</script>' ) ),
		);
		foreach ( $cells as $cell ) {
			$this->assertStringNotContainsString( '<script>', $cell );
			$this->assertStringNotContainsString( '" onmouseover="', $cell );
			$this->assertStringContainsString( '&lt;script&gt;', $cell );
		}
		$this->assertStringContainsString( 'Problem: &lt;script&gt;alert(1)&lt;/script&gt; &quot; onmouseover=&quot;alert(2)', $cells[0] );
	}

	public function test_the_supplier_order_id_shows_under_the_status(): void {
		$cell = self::hpos_cell( array( 'rewix_sync_status' => 'sent: Dispatched', 'rewix_supplier_order' => '12345' ) );

		$this->assertStringContainsString( '<span>Sent: Dispatched</span></mark><small class="rewix-sync-supplier-order">Supplier order 12345</small>', $cell );
		$this->assertStringContainsString( 'Supplier order 777', self::legacy_cell( array( 'rewix_sync_status' => 'sent: Booked', 'rewix_supplier_order' => 777 ) ) );
	}

	public function test_no_supplier_order_id_means_no_line_for_it(): void {
		$this->assertStringNotContainsString( 'Supplier order', self::hpos_cell( array( 'rewix_sync_status' => 'reserved', 'rewix_supplier_order' => '' ) ) );
	}

	public function test_an_order_without_the_meta_shows_an_em_dash(): void {
		$no_status = array( array(), array( 'rewix_sync_status' => '' ), array( 'rewix_sync_status' => "  \n" ), array( 'rewix_sync_status' => array( 'reserved' ) ) );
		foreach ( $no_status as $meta ) {
			foreach ( array( self::hpos_cell( $meta ), self::legacy_cell( $meta ) ) as $cell ) {
				$this->assertStringContainsString( '&mdash;', $cell );
				$this->assertStringNotContainsString( '<mark', $cell );
				$this->assertStringNotContainsString( 'Supplier order', $cell );
			}
		}
	}

	public function test_a_legacy_row_whose_order_cannot_be_read_shows_the_dash(): void {
		$cell = rss_do_action( 'manage_shop_order_posts_custom_column', 'rewix_sync_status', 404 );

		$this->assertStringContainsString( '&mdash;', $cell );
	}

	public function test_other_columns_are_left_to_woocommerce(): void {
		$order = new WC_Order( 7, array( 'rewix_sync_status' => 'reserved' ) );
		$GLOBALS['rss_orders'][ 7 ] = $order;

		$this->assertSame( '', rss_do_action( 'manage_woocommerce_page_wc-orders_custom_column', 'order_total', $order ) );
		$this->assertSame( '', rss_do_action( 'manage_shop_order_posts_custom_column', 'order_status', 7 ) );
	}

	public function test_the_box_is_added_to_the_hpos_order_page(): void {
		rss_do_action( 'add_meta_boxes', self::HPOS_SCREEN, new WC_Order( 7 ) );

		$this->assertCount( 1, $GLOBALS['rss_meta_boxes'] );
		$box = $GLOBALS['rss_meta_boxes'][0];
		$this->assertSame( array( 'rewix-sync-status', 'Supplier sync', self::HPOS_SCREEN, 'side' ), array( $box['id'], $box['title'], $box['screen'], $box['context'] ) );
	}

	public function test_the_box_is_added_to_the_legacy_order_page_with_hpos_on_or_off(): void {
		foreach ( array( true, false ) as $hpos ) {
			rss_reset_stubs();
			$GLOBALS['rss_hpos_active'] = $hpos;
			rss_do_action( 'add_meta_boxes', 'shop_order', new WP_Post( 8 ) );

			$this->assertCount( 1, $GLOBALS['rss_meta_boxes'] );
			$this->assertSame( 'shop_order', $GLOBALS['rss_meta_boxes'][0]['screen'] );
		}
	}

	public function test_other_edit_pages_get_no_box(): void {
		rss_do_action( 'add_meta_boxes', 'post', new WP_Post( 1 ) );
		rss_do_action( 'add_meta_boxes', 'product', new WP_Post( 2 ) );

		$this->assertSame( array(), $GLOBALS['rss_meta_boxes'] );
	}

	private static function box_for( $post_or_order ): string {
		rss_do_action( 'add_meta_boxes', self::HPOS_SCREEN, $post_or_order );
		ob_start();
		call_user_func( $GLOBALS['rss_meta_boxes'][0]['callback'], $post_or_order );
		return ob_get_clean();
	}

	public function test_the_box_shows_the_state_its_meaning_and_the_supplier_order_for_an_hpos_order(): void {
		$box = self::box_for( new WC_Order( 7, array( 'rewix_sync_status' => 'sent: Working on', 'rewix_supplier_order' => '4242' ) ) );

		$this->assertStringContainsString( '<mark class="rewix-sync-status rewix-sync-sent"', $box );
		$this->assertStringContainsString( '<span>Sent: Working on</span>', $box );
		$this->assertStringContainsString( 'Sent to the supplier as a dropshipping order', $box );
		$this->assertStringContainsString( 'Supplier order 4242', $box );
	}

	public function test_the_box_reads_the_order_of_a_legacy_post(): void {
		$GLOBALS['rss_orders'][ 8 ] = new WC_Order( 8, array( 'rewix_sync_status' => 'problem: <b>refused</b>' ) );
		$box                        = self::box_for( new WP_Post( 8 ) );

		$this->assertStringContainsString( '<span>Problem: &lt;b&gt;refused&lt;/b&gt;</span>', $box );
		$this->assertStringContainsString( 'Something a person must look at.', $box );
		$this->assertStringContainsString( 'Not sent to the supplier yet.', $box );
		$this->assertStringNotContainsString( '<b>', $box );
	}

	public function test_the_box_of_an_order_without_the_meta_says_so(): void {
		$box = self::box_for( new WC_Order( 7 ) );

		$this->assertStringContainsString( '&mdash;', $box );
		$this->assertStringContainsString( 'No supplier sync status', $box );
		$this->assertStringNotContainsString( 'Not sent to the supplier yet.', $box );
	}

	public function test_hpos_compatibility_is_declared_before_woocommerce_init(): void {
		$this->assertSame( array(), FeaturesUtil::$declared );

		rss_do_action( 'before_woocommerce_init' );

		$main = realpath( dirname( __DIR__ ) . '/rewix-sync-status.php' );
		$this->assertSame( array( array( 'custom_order_tables', $main, true ) ), FeaturesUtil::$declared );
	}

	public function test_the_stylesheet_loads_on_the_order_screens_only(): void {
		foreach ( array( 'woocommerce_page_wc-orders', 'edit-shop_order', 'shop_order' ) as $screen ) {
			rss_reset_stubs();
			$GLOBALS['rss_screen'] = (object) array( 'id' => $screen );
			rss_do_action( 'admin_enqueue_scripts', 'hook-suffix' );
			$this->assertSame( array( 'rewix-sync-status' => 'https://shop.example/wp-content/plugins/rewix-sync-status/assets/admin.css' ), $GLOBALS['rss_styles'], $screen );
		}
		foreach ( array( 'dashboard', 'edit-post', 'product' ) as $screen ) {
			rss_reset_stubs();
			$GLOBALS['rss_screen'] = (object) array( 'id' => $screen );
			rss_do_action( 'admin_enqueue_scripts', 'hook-suffix' );
			$this->assertSame( array(), $GLOBALS['rss_styles'], $screen );
		}
	}

	public function test_every_text_uses_the_plugins_text_domain(): void {
		$GLOBALS['rss_text_domains'] = array();
		apply_filters( 'manage_woocommerce_page_wc-orders_columns', self::columns( self::HPOS_COLUMNS ) );
		self::hpos_cell( array( 'rewix_sync_status' => 'odd', 'rewix_supplier_order' => '1' ) );
		self::box_for( new WC_Order( 7 ) );

		$this->assertSame( array( 'rewix-sync-status' ), array_keys( $GLOBALS['rss_text_domains'] ) );
	}
}
